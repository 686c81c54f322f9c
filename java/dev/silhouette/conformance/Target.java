package dev.silhouette.conformance;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cuda.BuiltinKernels;
import dev.silhouette.graph.Op;
import dev.silhouette.tensor.Shape;

import java.util.List;
import java.util.Optional;

/** What the suite checks: the CPU's fast kernels against its reference kernels, or a device backend against the CPU backend. */
public sealed interface Target {

    /** The backend's name in report lines ("cpu", "cuda:0"). */
    String name();

    /** The CPU's fast kernels; a case names the kernel variant after a slash ("cpu/gemm", "cpu/native_avx2"). */
    record Cpu(CpuKernels kernels) implements Target {
        public Cpu {
            if (kernels == null) throw new IllegalArgumentException("CPU kernels are null");
        }

        public String name() {
            return "cpu";
        }
    }

    /**
     * A backend that must match the CPU backend. {@code supports} says, before a case runs, why the
     * backend refuses an op on given input shapes (empty when it takes it); a refusal is reported as
     * "not supported", never as a failure.
     */
    record Device(Backend backend, Support support) implements Target {
        public Device {
            if (backend == null || support == null) throw new IllegalArgumentException("a device target needs a backend and its support check");
        }

        public String name() {
            return backend.name();
        }
    }

    interface Support {
        /** Why the backend does not run {@code op} on these input shapes (batch first), or empty. */
        Optional<String> refusal(Op op, List<Shape> inputs);
    }

    /** The CPU's own kernels. */
    static Target cpu() {
        return new Cpu(CpuKernels.standard());
    }

    /** A CUDA backend, whose refusals are the built-in kernels' typed limits. */
    static Target cuda(Backend cuda) {
        return new Device(cuda, (op, inputs) -> BuiltinKernels.supports(op, inputs).map(Object::toString));
    }
}
