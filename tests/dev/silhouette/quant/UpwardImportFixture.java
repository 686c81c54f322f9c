package dev.silhouette.quant;

import dev.silhouette.pipeline.Plans;

/** Not a test: a deliberate upward import (quant reading the pipeline) that LayeringTest must refuse. */
final class UpwardImportFixture {
    private UpwardImportFixture() {}

    static int preBranchBits() {
        return Plans.PRE_BRANCH_BITS;
    }
}
