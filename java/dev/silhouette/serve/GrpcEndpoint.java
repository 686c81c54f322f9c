package dev.silhouette.serve;

import com.google.protobuf.ByteString;
import dev.silhouette.api.TensorInfo;
import dev.silhouette.tensor.Tensor;
import inference.GRPCInferenceServiceGrpc;
import inference.OpenInferenceGrpc.InferTensorContents;
import inference.OpenInferenceGrpc.ModelInferRequest;
import inference.OpenInferenceGrpc.ModelInferResponse;
import inference.OpenInferenceGrpc.ModelMetadataRequest;
import inference.OpenInferenceGrpc.ModelMetadataResponse;
import inference.OpenInferenceGrpc.ModelReadyRequest;
import inference.OpenInferenceGrpc.ModelReadyResponse;
import inference.OpenInferenceGrpc.ServerLiveRequest;
import inference.OpenInferenceGrpc.ServerLiveResponse;
import inference.OpenInferenceGrpc.ServerMetadataRequest;
import inference.OpenInferenceGrpc.ServerMetadataResponse;
import inference.OpenInferenceGrpc.ServerReadyRequest;
import inference.OpenInferenceGrpc.ServerReadyResponse;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * The protocol over gRPC: {@code inference.GRPCInferenceService}, generated from the protocol's own
 * {@code open_inference_grpc.proto}. Inputs come as typed contents or as {@code raw_input_contents}
 * (little-endian, one per input); outputs go back as {@code raw_output_contents}, as Triton sends them.
 * Refusals carry the status code of their reason (INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE,
 * RESOURCE_EXHAUSTED) and the same message as over REST.
 */
final class GrpcEndpoint implements AutoCloseable {
    private final io.grpc.Server grpc;
    /** Answers are encoded here, not on the batcher's thread, which goes on to the next batch. */
    private final ExecutorService responses = Executors.newVirtualThreadPerTaskExecutor();

    GrpcEndpoint(Server server, int port, long maxBody) throws IOException {
        grpc = NettyServerBuilder.forAddress(new InetSocketAddress(port))
                .maxInboundMessageSize(Math.toIntExact(maxBody))
                .addService(new Service(server, responses))
                .build()
                .start();
    }

    int port() {
        return grpc.getPort();
    }

    @Override
    public void close() {
        grpc.shutdown();
        try {
            if (!grpc.awaitTermination(1, TimeUnit.SECONDS)) grpc.shutdownNow();
        } catch (InterruptedException e) {
            grpc.shutdownNow();
            Thread.currentThread().interrupt();
        }
        responses.shutdownNow();
    }

    private static final class Service extends GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase {
        private final Server server;
        private final ExecutorService responses;

        Service(Server server, ExecutorService responses) {
            this.server = server;
            this.responses = responses;
        }

        @Override
        public void serverLive(ServerLiveRequest request, StreamObserver<ServerLiveResponse> out) {
            answer(out, "ServerLive", null, () -> ServerLiveResponse.newBuilder().setLive(server.live()).build());
        }

        @Override
        public void serverReady(ServerReadyRequest request, StreamObserver<ServerReadyResponse> out) {
            answer(out, "ServerReady", null, () -> ServerReadyResponse.newBuilder().setReady(server.ready()).build());
        }

        @Override
        public void modelReady(ModelReadyRequest request, StreamObserver<ModelReadyResponse> out) {
            answer(out, "ModelReady", request.getName(), () -> ModelReadyResponse.newBuilder().setReady(server.modelReady(request.getName(), request.getVersion())).build());
        }

        @Override
        public void serverMetadata(ServerMetadataRequest request, StreamObserver<ServerMetadataResponse> out) {
            answer(out, "ServerMetadata", null, () -> ServerMetadataResponse.newBuilder().setName(Server.NAME).setVersion(Server.VERSION)
                    .addAllExtensions(server.extensions()).build());
        }

        @Override
        public void modelMetadata(ModelMetadataRequest request, StreamObserver<ModelMetadataResponse> out) {
            answer(out, "ModelMetadata", request.getName(), () -> {
                ServedModel m = server.find(request.getName(), request.getVersion(), "name");
                ModelMetadataResponse.Builder b = ModelMetadataResponse.newBuilder().setName(m.name).addVersions(ServedModel.VERSION).setPlatform(m.platform())
                        .putAllProperties(m.properties());
                for (TensorInfo t : m.inputs.values()) b.addInputs(tensor(t));
                for (TensorInfo t : m.outputs.values()) b.addOutputs(tensor(t));
                return b.build();
            });
        }

        private static ModelMetadataResponse.TensorMetadata tensor(TensorInfo t) {
            return ModelMetadataResponse.TensorMetadata.newBuilder().setName(t.name()).setDatatype(t.datatype()).addAllShape(t.shape()).build();
        }

        @Override
        public void modelInfer(ModelInferRequest request, StreamObserver<ModelInferResponse> out) {
            long start = System.nanoTime();
            ServedModel model;
            InferRequest decoded;
            try {
                model = server.find(request.getModelName(), request.getModelVersion(), "model_name");
            } catch (InferenceError e) {
                fail(out, e, "ModelInfer", request.getModelName(), request.getId(), start);
                return;
            }
            try {
                decoded = decode(model, request);
            } catch (InferenceError e) {
                server.refused(model, e);
                fail(out, e, "ModelInfer", request.getModelName(), request.getId(), start);
                return;
            }
            server.infer(model, decoded).whenCompleteAsync((result, error) -> {
                if (error != null) {
                    fail(out, Server.unwrap(error), "ModelInfer", model.name, request.getId(), start);
                    return;
                }
                try {
                    out.onNext(encode(result));
                    out.onCompleted();
                    server.log().record("grpc", "ModelInfer", model.name, "OK", (System.nanoTime() - start) / 1000, request.getId(), null);
                } catch (StatusRuntimeException gone) {
                    // The call was cancelled by the client: nothing to answer to.
                }
            }, responses);
        }

        private void fail(StreamObserver<?> out, InferenceError e, String call, String model, String id, long start) {
            try {
                out.onError(Status.fromCode(e.reason().grpc).withDescription(e.getMessage()).asRuntimeException());
            } catch (StatusRuntimeException gone) {
                // Cancelled by the client.
            }
            server.log().record("grpc", call, model, e.reason().grpc.name(), (System.nanoTime() - start) / 1000, id, e.getMessage());
        }

        private interface Answer<T> {
            T get();
        }

        private <T> void answer(StreamObserver<T> out, String call, String model, Answer<T> answer) {
            long start = System.nanoTime();
            T value;
            try {
                value = answer.get();
            } catch (InferenceError e) {
                fail(out, e, call, model, null, start);
                return;
            } catch (RuntimeException e) {
                fail(out, new InferenceError(InferenceError.Reason.INTERNAL, "internal error: " + e), call, model, null, start);
                return;
            }
            out.onNext(value);
            out.onCompleted();
        }
    }

    static InferRequest decode(ServedModel model, ModelInferRequest request) {
        int raw = request.getRawInputContentsCount();
        if (request.getInputsCount() == 0) throw InferenceError.invalid("inputs is empty; model " + model.name + " takes " + model.inputs.keySet());
        if (raw != 0 && raw != request.getInputsCount()) {
            throw InferenceError.invalid("raw_input_contents holds " + raw + " tensors for " + request.getInputsCount() + " inputs; give one per input or none");
        }
        List<InferRequest.Input> inputs = new ArrayList<>();
        for (int i = 0; i < request.getInputsCount(); i++) {
            ModelInferRequest.InferInputTensor t = request.getInputs(i);
            String field = "inputs[" + i + "]";
            if (t.getDatatype().isEmpty()) throw InferenceError.invalid(field + ".datatype is missing; the model takes FP32");
            Datatypes.size(t.getDatatype(), field);
            int count = model.checkInput(field, t.getName().isEmpty() ? null : t.getName(), t.getShapeList());
            float[] data;
            if (raw != 0) {
                if (t.hasContents()) throw InferenceError.invalid(field + " has contents and raw_input_contents; send one");
                data = Datatypes.decode(t.getDatatype(), request.getRawInputContents(i).asReadOnlyByteBuffer(), count, field + " (raw_input_contents[" + i + "])");
            } else {
                data = contents(t.getDatatype(), t.getContents(), count, field);
            }
            inputs.add(new InferRequest.Input(t.getName(), t.getShapeList(), data));
        }
        List<String> outputs = new ArrayList<>();
        for (ModelInferRequest.InferRequestedOutputTensor o : request.getOutputsList()) outputs.add(o.getName());
        return new InferRequest(model.name, request.getModelVersion(), request.getId(), inputs, outputs);
    }

    /** Typed contents: the field of the datatype, converted to float32 as over REST. */
    private static float[] contents(String datatype, InferTensorContents c, int count, String field) {
        String source = switch (datatype) {
            case "FP32" -> "fp32_contents";
            case "FP64" -> "fp64_contents";
            case "INT8", "INT16", "INT32" -> "int_contents";
            case "INT64" -> "int64_contents";
            case "UINT8", "UINT16", "UINT32" -> "uint_contents";
            case "UINT64" -> "uint64_contents";
            default -> throw InferenceError.invalid(field + ": datatype " + datatype + " has no typed contents field; send it as raw_input_contents");
        };
        int given = switch (source) {
            case "fp32_contents" -> c.getFp32ContentsCount();
            case "fp64_contents" -> c.getFp64ContentsCount();
            case "int_contents" -> c.getIntContentsCount();
            case "int64_contents" -> c.getInt64ContentsCount();
            case "uint_contents" -> c.getUintContentsCount();
            default -> c.getUint64ContentsCount();
        };
        if (given != count) throw InferenceError.invalid(field + ".contents." + source + " holds " + given + " values; the shape needs " + count);
        float[] out = new float[count];
        for (int i = 0; i < count; i++) {
            out[i] = switch (source) {
                case "fp32_contents" -> c.getFp32Contents(i);
                case "fp64_contents" -> (float) c.getFp64Contents(i);
                case "int_contents" -> Datatypes.fromJson(datatype, c.getIntContents(i), field);
                case "int64_contents" -> (float) c.getInt64Contents(i);
                case "uint_contents" -> Datatypes.fromJson(datatype, Integer.toUnsignedLong(c.getUintContents(i)), field);
                default -> Datatypes.fromJson("UINT64", Double.parseDouble(Long.toUnsignedString(c.getUint64Contents(i))), field);
            };
        }
        return out;
    }

    static ModelInferResponse encode(Server.Result result) {
        ModelInferResponse.Builder b = ModelInferResponse.newBuilder().setModelName(result.model().name).setModelVersion(ServedModel.VERSION).setId(result.id());
        for (Map.Entry<String, Tensor> e : result.outputs().entrySet()) {
            Tensor t = e.getValue();
            ModelInferResponse.InferOutputTensor.Builder o = b.addOutputsBuilder().setName(e.getKey()).setDatatype(TensorInfo.FP32);
            for (int d : t.shape().dims()) o.addShape(d);
            ByteBuffer bytes = ByteBuffer.allocate(4 * t.size()).order(ByteOrder.LITTLE_ENDIAN);
            bytes.asFloatBuffer().put(t.data());
            b.addRawOutputContents(ByteString.copyFrom(bytes.array()));
        }
        return b.build();
    }
}
