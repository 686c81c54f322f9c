package dev.silhouette.conformance;

/** The outcome of one case on one backend variant. */
public enum Verdict {
    PASS,
    FAIL,
    /** The backend refuses the op on these shapes, with a typed reason. */
    UNSUPPORTED,
    /** The backend is this op's specification and has no second kernel to check it against (the CPU for most ops). */
    SPECIFICATION,
    /** Timed in perf mode, not compared. */
    TIMED
}
