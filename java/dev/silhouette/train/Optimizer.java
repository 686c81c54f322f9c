package dev.silhouette.train;

import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Parameter updates, following PyTorch's torch.optim formulas exactly so recipes carry over. State
 * (momentum buffers, Adam moments, step count) is exported by name for checkpoints. Parameters without
 * a gradient in a step are skipped entirely, weight decay included (PyTorch skips grad None).
 */
public sealed interface Optimizer permits Optimizer.Sgd, Optimizer.AdamW {

    /**
     * @param momentum the momentum (SGD) or beta1 (AdamW) for this step: schedules such as one-cycle vary it
     */
    void step(Map<String, Tensor> parameters, Map<String, Tensor> grads, double lr, double momentum);

    /** The configured momentum / beta1, used when the schedule does not set one. */
    double baseMomentum();

    /** Optimizer state by name, for checkpoints. */
    Map<String, Tensor> state();

    void loadState(Map<String, Tensor> state);

    String name();

    /** Name and hyperparameters, e.g. for refusing to resume a checkpoint under other settings. */
    String describe();

    /**
     * SGD: g = grad + wd * p; buf = momentum * buf + g (buf = g at the first step); with Nesterov
     * g = g + momentum * buf, else g = buf; p -= lr * g.
     */
    final class Sgd implements Optimizer {
        private final double momentum, weightDecay;
        private final boolean nesterov;
        private final Map<String, Tensor> buffers = new LinkedHashMap<>();

        public Sgd(double momentum, boolean nesterov, double weightDecay) {
            if (momentum < 0 || momentum >= 1) throw new IllegalArgumentException("SGD momentum " + momentum + " must be in [0, 1)");
            if (weightDecay < 0) throw new IllegalArgumentException("weight decay " + weightDecay + " must not be negative");
            if (nesterov && momentum == 0) throw new IllegalArgumentException("Nesterov momentum needs a momentum above 0");
            this.momentum = momentum;
            this.nesterov = nesterov;
            this.weightDecay = weightDecay;
        }

        @Override
        public void step(Map<String, Tensor> parameters, Map<String, Tensor> grads, double lr, double mom) {
            grads.forEach((name, grad) -> {
                float[] p = parameters.get(name).data(), g = grad.data();
                Tensor buffer = buffers.get(name);
                boolean first = buffer == null;
                if (first && mom > 0) buffers.put(name, buffer = Tensor.zeros(grad.shape()));
                for (int i = 0; i < p.length; i++) {
                    float d = (float) (g[i] + weightDecay * p[i]);
                    if (mom > 0) {
                        float[] b = buffer.data();
                        b[i] = first ? d : (float) (mom * b[i] + d);
                        d = nesterov ? (float) (d + mom * b[i]) : b[i];
                    }
                    p[i] = (float) (p[i] - lr * d);
                }
            });
        }

        @Override
        public double baseMomentum() {
            return momentum;
        }

        @Override
        public Map<String, Tensor> state() {
            Map<String, Tensor> s = new LinkedHashMap<>();
            buffers.forEach((name, t) -> s.put("momentum_buffer." + name, t));
            return s;
        }

        @Override
        public void loadState(Map<String, Tensor> state) {
            buffers.clear();
            state.forEach((key, t) -> {
                if (key.startsWith("momentum_buffer.")) buffers.put(key.substring("momentum_buffer.".length()), t.copy());
            });
        }

        @Override
        public String name() {
            return "sgd";
        }

        @Override
        public String describe() {
            return "sgd(momentum=" + momentum + ", nesterov=" + nesterov + ", weight_decay=" + weightDecay + ")";
        }
    }

    /**
     * AdamW (Loshchilov and Hutter): p *= 1 - lr * wd; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
     * p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
     */
    final class AdamW implements Optimizer {
        private final double beta1, beta2, eps, weightDecay;
        private final Map<String, Tensor> first = new LinkedHashMap<>(), second = new LinkedHashMap<>();
        private final Map<String, Long> steps = new HashMap<>();

        public AdamW(double beta1, double beta2, double eps, double weightDecay) {
            if (beta1 < 0 || beta1 >= 1 || beta2 < 0 || beta2 >= 1) throw new IllegalArgumentException("Adam betas (" + beta1 + ", " + beta2 + ") must be in [0, 1)");
            if (eps <= 0) throw new IllegalArgumentException("Adam epsilon " + eps + " must be positive");
            if (weightDecay < 0) throw new IllegalArgumentException("weight decay " + weightDecay + " must not be negative");
            this.beta1 = beta1;
            this.beta2 = beta2;
            this.eps = eps;
            this.weightDecay = weightDecay;
        }

        @Override
        public void step(Map<String, Tensor> parameters, Map<String, Tensor> grads, double lr, double b1) {
            grads.forEach((name, grad) -> {
                float[] p = parameters.get(name).data(), g = grad.data();
                float[] m = first.computeIfAbsent(name, k -> Tensor.zeros(grad.shape())).data();
                float[] v = second.computeIfAbsent(name, k -> Tensor.zeros(grad.shape())).data();
                long t = steps.merge(name, 1L, Long::sum);
                double c1 = 1 - Math.pow(b1, t), c2 = 1 - Math.pow(beta2, t);
                for (int i = 0; i < p.length; i++) {
                    p[i] = (float) (p[i] * (1 - lr * weightDecay));
                    m[i] = (float) (b1 * m[i] + (1 - b1) * g[i]);
                    v[i] = (float) (beta2 * v[i] + (1 - beta2) * g[i] * g[i]);
                    p[i] = (float) (p[i] - lr * (m[i] / c1) / (Math.sqrt(v[i] / c2) + eps));
                }
            });
        }

        @Override
        public double baseMomentum() {
            return beta1;
        }

        @Override
        public Map<String, Tensor> state() {
            Map<String, Tensor> s = new LinkedHashMap<>();
            first.forEach((name, t) -> s.put("exp_avg." + name, t));
            second.forEach((name, t) -> s.put("exp_avg_sq." + name, t));
            // Step counts up to 2^24 are exact in float32, far beyond any run here.
            steps.forEach((name, t) -> s.put("step." + name, new Tensor(Shape.of(1), new float[] {t})));
            return s;
        }

        @Override
        public void loadState(Map<String, Tensor> state) {
            first.clear();
            second.clear();
            steps.clear();
            state.forEach((key, t) -> {
                if (key.startsWith("exp_avg.")) first.put(key.substring("exp_avg.".length()), t.copy());
                else if (key.startsWith("exp_avg_sq.")) second.put(key.substring("exp_avg_sq.".length()), t.copy());
                else if (key.startsWith("step.")) steps.put(key.substring("step.".length()), (long) t.data()[0]);
            });
        }

        @Override
        public String name() {
            return "adamw";
        }

        @Override
        public String describe() {
            return "adamw(betas=" + beta1 + "/" + beta2 + ", eps=" + eps + ", weight_decay=" + weightDecay + ")";
        }
    }
}
