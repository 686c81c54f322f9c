package dev.silhouette.quant;

import dev.silhouette.pipeline.Plans;

/** Not a test: a deliberate upward import (quant reading the pipeline) that LayeringTest must refuse. */
final class UpwardImportFixture {
    private UpwardImportFixture() {}

    static int sharedWeightBits(RegionPolicy policy) {
        return Plans.sharedWeightBits(policy);
    }
}
