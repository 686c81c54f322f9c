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
}
