package dev.silhouette.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import dev.silhouette.tensor.Shape;
import dev.silhouette.tensor.Tensor;

import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * ONNX Runtime (CPU execution provider) as the peer: runs a model file or model bytes on float32
 * inputs. Graph optimizations are off so it computes the ops as written, not fused versions.
 */
final class OrtPeer implements AutoCloseable {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    private OrtPeer(OrtSession session) {
        this.session = session;
    }

    static OrtSession.SessionOptions options(OrtSession.SessionOptions.OptLevel level) throws OrtException {
        OrtSession.SessionOptions o = new OrtSession.SessionOptions();
        o.setOptimizationLevel(level);
        o.setIntraOpNumThreads(Math.max(1, Runtime.getRuntime().availableProcessors()));
        return o;
    }

    static OrtPeer open(Path model) {
        return open(model, OrtSession.SessionOptions.OptLevel.NO_OPT);
    }

    static OrtPeer open(Path model, OrtSession.SessionOptions.OptLevel level) {
        try (OrtSession.SessionOptions o = options(level)) {
            return new OrtPeer(OrtEnvironment.getEnvironment().createSession(model.toString(), o));
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime cannot load " + model + ": " + e.getMessage(), e);
        }
    }

    static OrtPeer open(byte[] model) {
        try (OrtSession.SessionOptions o = options(OrtSession.SessionOptions.OptLevel.NO_OPT)) {
            return new OrtPeer(OrtEnvironment.getEnvironment().createSession(model, o));
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime cannot load the model: " + e.getMessage(), e);
        }
    }

    Map<String, Tensor> run(Map<String, Tensor> inputs) {
        Map<String, OnnxTensor> feed = new HashMap<>();
        try {
            for (Map.Entry<String, Tensor> e : inputs.entrySet()) {
                int[] d = e.getValue().shape().dims();
                long[] dims = new long[d.length];
                for (int i = 0; i < d.length; i++) dims[i] = d[i];
                feed.put(e.getKey(), OnnxTensor.createTensor(env, FloatBuffer.wrap(e.getValue().data()), dims));
            }
            Map<String, Tensor> out = new LinkedHashMap<>();
            try (OrtSession.Result r = session.run(feed)) {
                for (Map.Entry<String, OnnxValue> e : r) {
                    OnnxTensor t = (OnnxTensor) e.getValue();
                    long[] dims = t.getInfo().getShape();
                    int[] d = new int[dims.length];
                    for (int i = 0; i < d.length; i++) d[i] = Math.toIntExact(dims[i]);
                    FloatBuffer fb = t.getFloatBuffer();
                    float[] data = new float[fb.remaining()];
                    fb.get(data);
                    out.put(e.getKey(), new Tensor(Shape.of(d), data));
                }
            }
            return out;
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed: " + e.getMessage(), e);
        } finally {
            feed.values().forEach(OnnxTensor::close);
        }
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }
}
