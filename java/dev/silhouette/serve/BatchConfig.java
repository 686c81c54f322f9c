package dev.silhouette.serve;

import java.time.Duration;

/**
 * How one model's requests are queued and batched, with Triton's semantics: requests join a batch of at
 * most {@code maxBatchSize} samples; a batch leaves when full or when its oldest request has waited
 * {@code maxQueueDelay}; at most {@code queueSize} requests wait (more are refused at once with
 * UNAVAILABLE), and one still waiting after {@code timeout} is answered UNAVAILABLE. {@code dynamicBatching}
 * off runs each request alone; {@code instances} batches run at once.
 */
public record BatchConfig(int maxBatchSize, boolean dynamicBatching, Duration maxQueueDelay, int queueSize, Duration timeout, int instances) {
    public static final BatchConfig DEFAULT = new BatchConfig(32, true, Duration.ofMillis(2), 256, Duration.ofSeconds(10), 1);

    public BatchConfig {
        if (maxBatchSize < 1 || maxBatchSize > 65_536) throw new IllegalArgumentException("max_batch_size " + maxBatchSize + " must be between 1 and 65536");
        if (maxQueueDelay.isNegative() || maxQueueDelay.compareTo(Duration.ofSeconds(10)) > 0) {
            throw new IllegalArgumentException("max_queue_delay " + maxQueueDelay.toMillis() + " ms must be between 0 and 10000 ms");
        }
        if (queueSize < 1 || queueSize > 1_000_000) throw new IllegalArgumentException("queue_size " + queueSize + " must be between 1 and 1000000");
        if (timeout.isNegative() || timeout.isZero() || timeout.compareTo(Duration.ofHours(1)) > 0) {
            throw new IllegalArgumentException("timeout " + timeout.toMillis() + " ms must be between 1 ms and one hour");
        }
        if (instances < 1 || instances > 64) throw new IllegalArgumentException("instances " + instances + " must be between 1 and 64");
    }

    public BatchConfig withDynamicBatching(boolean on) {
        return new BatchConfig(maxBatchSize, on, maxQueueDelay, queueSize, timeout, instances);
    }

    public BatchConfig withQueue(int size, Duration timeout) {
        return new BatchConfig(maxBatchSize, dynamicBatching, maxQueueDelay, size, timeout, instances);
    }
}
