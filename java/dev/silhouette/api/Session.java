package dev.silhouette.api;

import dev.silhouette.backend.Backend;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.pipeline.Evaluation;
import dev.silhouette.tensor.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A {@link Model} prepared for one backend: safe to call from many threads at once, closed when done.
 * Quantized graphs run on the CPU backend whatever was asked for, because the quantization ops exist
 * only there (see the README's status table); {@link #backend()} says which one runs.
 * Every input is checked before any compute: a missing, unknown or misshapen input, disagreeing batch
 * sizes or an unknown requested output are refused with an {@link IllegalArgumentException} naming it.
 */
public final class Session implements AutoCloseable {
    private final Model model;
    private final Backend opened;
    private final Backend runner;
    private final List<TensorInfo> inputs, outputs;
    /** Device backends keep per-call state; the CPU backend keeps none, so only the others are serialised. */
    private final ReentrantLock deviceLock;
    private volatile boolean closed;

    Session(Model model, Backend backend) {
        this.model = model;
        this.opened = backend;
        this.runner = Evaluation.backendFor(model.graph(), backend, backend instanceof CpuBackend ? backend : new CpuBackend());
        this.inputs = model.inputs();
        this.outputs = model.outputs();
        this.deviceLock = runner instanceof CpuBackend ? null : new ReentrantLock();
    }

    /** The model this session runs. */
    public Model model() { return model; }

    /** The backend that runs it, e.g. {@code cpu} or {@code cuda:0}. */
    public String backend() { return runner.name(); }

    /** The model's inputs (batch axis {@code -1}). */
    public List<TensorInfo> inputs() { return inputs; }

    /** The model's outputs by client name (batch axis {@code -1}). */
    public List<TensorInfo> outputs() { return outputs; }

    /** Runs a batch and returns every output, by client name, in declaration order. */
    public Map<String, Tensor> run(Map<String, Tensor> feed) {
        return run(feed, model.outputNames().keySet());
    }

    /**
     * Runs a batch: {@code feed} maps every input name to an N x sample-shape tensor (one N for all);
     * returns the {@code requested} outputs by client name, in the order asked.
     */
    public Map<String, Tensor> run(Map<String, Tensor> feed, Collection<String> requested) {
        if (closed) throw new IllegalStateException("session of " + model + " is closed");
        check(feed);
        Map<String, String> names = model.outputNames();
        List<String> values = new ArrayList<>();
        for (String r : new LinkedHashSet<>(requested)) {
            String v = names.get(r);
            if (v == null) throw new IllegalArgumentException("requested output '" + r + "' is not an output of " + model.name() + "; outputs are " + names.keySet());
            if (!values.contains(v)) values.add(v);
        }
        if (values.isEmpty()) throw new IllegalArgumentException("no outputs requested; outputs are " + names.keySet());
        Map<String, Tensor> out;
        if (deviceLock == null) out = runner.run(model.graph(), feed, values);
        else {
            deviceLock.lock();
            try {
                out = runner.run(model.graph(), feed, values);
            } finally {
                deviceLock.unlock();
            }
        }
        Map<String, Tensor> result = new LinkedHashMap<>();
        for (String r : requested) result.put(r, out.get(names.get(r)));
        return result;
    }

    private void check(Map<String, Tensor> feed) {
        int batch = -1;
        String first = null;
        for (TensorInfo in : inputs) {
            Tensor t = feed.get(in.name());
            if (t == null) throw new IllegalArgumentException("input '" + in.name() + "' (shape " + in.shape() + ") was not given; given: " + feed.keySet());
            int[] dims = t.shape().dims(), sample = in.sampleDims();
            boolean ok = dims.length == sample.length + 1 && Arrays.equals(Arrays.copyOfRange(dims, 1, dims.length), sample);
            if (!ok) throw new IllegalArgumentException("input '" + in.name() + "' has shape " + Arrays.toString(dims) + "; the model takes " + in.shape());
            if (dims[0] < 1) throw new IllegalArgumentException("input '" + in.name() + "' has an empty batch");
            if (batch >= 0 && dims[0] != batch) {
                throw new IllegalArgumentException("inputs disagree on the batch size: '" + in.name() + "' has " + dims[0] + ", '" + first + "' " + batch);
            }
            batch = dims[0];
            first = in.name();
        }
        for (String name : feed.keySet()) {
            if (inputs.stream().noneMatch(i -> i.name().equals(name))) {
                throw new IllegalArgumentException("'" + name + "' is not an input of " + model.name() + "; inputs are " + inputs.stream().map(TensorInfo::name).toList());
            }
        }
    }

    /** Closes the backend; later calls to {@link #run} are refused. */
    @Override
    public void close() {
        closed = true;
        opened.close();
        if (runner != opened) runner.close();
    }
}
