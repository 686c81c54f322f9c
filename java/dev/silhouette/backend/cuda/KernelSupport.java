package dev.silhouette.backend.cuda;

/**
 * Whether a hand-written low-bit kernel takes a problem, and if not, why (CUTLASS's can_implement):
 * asked before every launch, so a problem outside a kernel's limits is refused with its reason instead
 * of computing garbage. Invalid input (mismatched shapes, widths out of range) is not a limit: the
 * kernels' glue rejects it with an IllegalArgumentException.
 */
public sealed interface KernelSupport {
    /** The limits of the low-bit kernels (docs/KERNELS.md lists which kernel has which). */
    enum Reason {
        /** More regions than the 8 whose widths travel packed in one 32-bit argument (packed_layout.cuh). */
        TOO_MANY_REGIONS,
        /** An int32 accumulator could overflow: taps x largest activation code x largest |weight code| reaches 2^31. */
        ACCUMULATOR_RANGE,
        /** A count the kernel keeps in 32 bits (channels, sizes, grid x) reaches 2^31. */
        INDEX_RANGE,
        /** More output channels than grid y can cover (2 x words(O) warps of 32 channels, at most 65535). */
        GRID_RANGE,
        /** The CHANNEL_AFFINE epilogue (one affine map per channel) takes one region only. */
        EPILOGUE_REGIONS,
        /** Codes wider than the tensor-core operand (u8 activations, s8 weights). */
        CODE_RANGE,
        /** An activation grid the kernel does not quantize (DRQ classes). */
        ACTIVATION_GRID,
        /** Bias-correction offsets, whose epilogue term needs per-region code sums. */
        BIAS_CORRECTION
    }

    record Supported() implements KernelSupport {}

    record Unsupported(Reason reason, String detail) implements KernelSupport {
        @Override
        public String toString() {
            return reason + ": " + detail;
        }
    }

    KernelSupport YES = new Supported();

    static KernelSupport no(Reason reason, String detail) {
        return new Unsupported(reason, detail);
    }

    /** Throws, naming the kernel and the reason, unless supported. */
    default void require(String kernel) {
        if (this instanceof Unsupported u) throw new IllegalArgumentException(kernel + " does not take this problem: " + u);
    }

    /** The first refusal of several checks, or YES. */
    static KernelSupport all(KernelSupport... checks) {
        for (KernelSupport c : checks) if (c instanceof Unsupported) return c;
        return YES;
    }

    /** Refuses when a 32-bit count reaches 2^31. */
    static KernelSupport indexable(String what, long value) {
        return value > Integer.MAX_VALUE ? no(Reason.INDEX_RANGE, what + " " + value + " reaches 2^31") : YES;
    }

    /** Refuses a null (0) device address where the kernel reads or writes one; {@code names} and addresses alternate. */
    static void addresses(String kernel, Object... namesAndAddresses) {
        for (int i = 0; i < namesAndAddresses.length; i += 2) {
            if ((long) namesAndAddresses[i + 1] == 0) throw new IllegalArgumentException(kernel + ": device address of " + namesAndAddresses[i] + " is null");
        }
    }
}
