package dev.silhouette.train;

/**
 * Learning-rate schedules over optimizer steps (0-based), with PyTorch's formulas. One-cycle also
 * cycles the momentum, as torch.optim.lr_scheduler.OneCycleLR does by default.
 */
public sealed interface Schedule permits Schedule.Constant, Schedule.Cosine, Schedule.StepDecay, Schedule.OneCycle, Schedule.Warmup {

    double lr(long step);

    /** Momentum (or Adam's beta1) at this step; {@code base} unless the schedule cycles it. */
    default double momentum(long step, double base) {
        return base;
    }

    record Constant(double lr) implements Schedule {
        public Constant {
            requirePositive(lr);
        }

        @Override
        public double lr(long step) {
            return lr;
        }
    }

    /** Cosine annealing from {@code lr} to {@code minLr} over {@code totalSteps} (CosineAnnealingLR). */
    record Cosine(double lr, double minLr, long totalSteps) implements Schedule {
        public Cosine {
            requirePositive(lr);
            if (totalSteps < 1) throw new IllegalArgumentException("cosine schedule needs at least 1 step, got " + totalSteps);
        }

        @Override
        public double lr(long step) {
            double t = Math.min(step, totalSteps);
            return minLr + (lr - minLr) * (1 + Math.cos(Math.PI * t / totalSteps)) / 2;
        }
    }

    /** lr * gamma^floor(step / stepSize) (StepLR). */
    record StepDecay(double lr, long stepSize, double gamma) implements Schedule {
        public StepDecay {
            requirePositive(lr);
            if (stepSize < 1) throw new IllegalArgumentException("step schedule: step size " + stepSize + " must be at least 1");
        }

        @Override
        public double lr(long step) {
            return lr * Math.pow(gamma, Math.floorDiv(step, stepSize));
        }
    }

    /**
     * OneCycleLR (two phases, cosine annealing): the rate rises from maxLr / divFactor to maxLr over the
     * first pctStart of the steps while momentum falls from maxMomentum to baseMomentum, then the rate
     * falls to maxLr / divFactor / finalDivFactor while momentum rises back.
     */
    record OneCycle(double maxLr, long totalSteps, double pctStart, double divFactor, double finalDivFactor,
                    double baseMomentum, double maxMomentum) implements Schedule {
        public OneCycle {
            requirePositive(maxLr);
            if (totalSteps < 2) throw new IllegalArgumentException("one-cycle schedule needs at least 2 steps, got " + totalSteps);
            if (!(pctStart > 0 && pctStart < 1)) throw new IllegalArgumentException("one-cycle warm-up fraction " + pctStart + " must be in (0, 1)");
        }

        /** PyTorch's defaults: div 25, final div 1e4, momentum 0.85 to 0.95. */
        public static OneCycle of(double maxLr, long totalSteps, double pctStart) {
            return new OneCycle(maxLr, totalSteps, pctStart, 25, 1e4, 0.85, 0.95);
        }

        private double peakStep() {
            return pctStart * totalSteps - 1;
        }

        private static double anneal(double start, double end, double pct) {
            return end + (start - end) / 2 * (Math.cos(Math.PI * pct) + 1);
        }

        @Override
        public double lr(long step) {
            double initial = maxLr / divFactor, min = initial / finalDivFactor;
            return step <= peakStep() ? anneal(initial, maxLr, step / peakStep())
                    : anneal(maxLr, min, Math.min(1, (step - peakStep()) / (totalSteps - 1 - peakStep())));
        }

        @Override
        public double momentum(long step, double base) {
            return step <= peakStep() ? anneal(maxMomentum, baseMomentum, step / peakStep())
                    : anneal(baseMomentum, maxMomentum, Math.min(1, (step - peakStep()) / (totalSteps - 1 - peakStep())));
        }
    }

    /** Linear warm-up: the inner rate times (step + 1) / steps for the first {@code steps} steps. */
    record Warmup(Schedule inner, long steps) implements Schedule {
        public Warmup {
            if (steps < 1) throw new IllegalArgumentException("warm-up of " + steps + " steps must be at least 1");
        }

        @Override
        public double lr(long step) {
            return inner.lr(step) * Math.min(1.0, (step + 1.0) / steps);
        }

        @Override
        public double momentum(long step, double base) {
            return inner.momentum(step, base);
        }
    }

    private static void requirePositive(double lr) {
        if (!(lr > 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("learning rate " + lr + " must be positive and finite");
    }
}
