package dev.silhouette.train;

import dev.silhouette.tensor.Tensor;

/** Softmax with cross-entropy, averaged over the batch (PyTorch's F.cross_entropy). */
public final class Loss {
    private Loss() {}

    /**
     * @param loss    mean of -log softmax(logits)[label]
     * @param grad    d loss / d logits = (softmax - onehot) / N
     * @param correct samples whose largest logit is the label
     */
    public record Result(double loss, Tensor grad, int correct) {}

    public static Result softmaxCrossEntropy(Tensor logits, int[] labels) {
        int batch = logits.shape().dim(0), classes = logits.shape().dim(1);
        if (logits.shape().rank() != 2) throw new IllegalArgumentException("cross-entropy needs N x classes logits, got " + logits.shape());
        if (labels.length != batch) throw new IllegalArgumentException(batch + " logits rows but " + labels.length + " labels");
        float[] z = logits.data(), g = new float[z.length];
        double total = 0;
        int correct = 0;
        for (int n = 0; n < batch; n++) {
            int label = labels[n];
            if (label < 0 || label >= classes) throw new IllegalArgumentException("label " + label + " of sample " + n + " is outside the model's " + classes + " classes");
            int off = n * classes, best = 0;
            float max = Float.NEGATIVE_INFINITY;
            for (int c = 0; c < classes; c++) {
                if (z[off + c] > max) max = z[off + c];
                if (z[off + c] > z[off + best]) best = c;
            }
            double sum = 0;
            for (int c = 0; c < classes; c++) sum += Math.exp((double) z[off + c] - max);
            total += Math.log(sum) + max - z[off + label];
            for (int c = 0; c < classes; c++) {
                double p = Math.exp((double) z[off + c] - max) / sum;
                g[off + c] = (float) ((p - (c == label ? 1 : 0)) / batch);
            }
            if (best == label) correct++;
        }
        return new Result(total / batch, new Tensor(logits.shape(), g), correct);
    }

    /**
     * Knowledge distillation (Hinton et al., 2015): {@code (1 - weight) * CE(logits, labels) + weight * T^2 *
     * KL(softmax(teacher / T) || softmax(logits / T))}, averaged over the batch. The T^2 keeps the soft term's
     * gradient on the scale of the hard one's as T grows. {@code correct} counts the student's predictions.
     */
    public static Result distillation(Tensor logits, Tensor teacherLogits, int[] labels, float weight, float temperature) {
        if (!teacherLogits.shape().equals(logits.shape())) {
            throw new IllegalArgumentException("teacher logits " + teacherLogits.shape() + " do not match the student's " + logits.shape());
        }
        if (!(weight >= 0 && weight <= 1)) throw new IllegalArgumentException("distillation weight " + weight + " must be between 0 and 1");
        if (!(temperature > 0) || Float.isInfinite(temperature)) throw new IllegalArgumentException("distillation temperature " + temperature + " must be positive and finite");
        Result hard = softmaxCrossEntropy(logits, labels);
        int batch = logits.shape().dim(0), classes = logits.shape().dim(1);
        float[] z = logits.data(), t = teacherLogits.data(), g = hard.grad().data().clone();
        double soft = 0;
        for (int n = 0; n < batch; n++) {
            int off = n * classes;
            double[] p = softmax(z, off, classes, temperature), q = softmax(t, off, classes, temperature);
            for (int c = 0; c < classes; c++) {
                if (q[c] > 0) soft += q[c] * (Math.log(q[c]) - Math.log(p[c]));
                // d/dz of T^2 KL(q || softmax(z / T)) = T (p - q)
                g[off + c] = (float) ((1 - weight) * g[off + c] + weight * temperature * (p[c] - q[c]) / batch);
            }
        }
        double loss = (1 - weight) * hard.loss() + weight * temperature * temperature * soft / batch;
        return new Result(loss, new Tensor(logits.shape(), g), hard.correct());
    }

    private static double[] softmax(float[] z, int off, int classes, float temperature) {
        double max = Double.NEGATIVE_INFINITY, sum = 0;
        for (int c = 0; c < classes; c++) max = Math.max(max, z[off + c] / (double) temperature);
        double[] p = new double[classes];
        for (int c = 0; c < classes; c++) sum += p[c] = Math.exp(z[off + c] / (double) temperature - max);
        for (int c = 0; c < classes; c++) p[c] /= sum;
        return p;
    }
}
