package dev.silhouette.graph;

import dev.silhouette.tensor.Window;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The model zoo: ResNet-20/32/56 (CIFAR), ResNet-18/50 (ImageNet, torchvision layout and parameter
 * names, so torchvision state dicts load as they are), a small ResNet for 28x28 single-channel
 * input and its strided-stem form for 60x60 cluttered images. Any of them can carry the auxiliary silhouette
 * branch after a named block.
 */
public final class Models {
    private Models() {}

    /** The graph output holding the silhouette (B x 1 x H x W, values in (0, 1)). */
    public static final String SILHOUETTE = "silhouette";
    public static final String LOGITS = "fc";
    /** With the attention branch: the prediction, {@link Op.LogitBlend} of {@link #LOGITS} and the branch's auxiliary logits. */
    public static final String BLENDED_LOGITS = "logits";
    /** Side of the attention branch's convolution (the original code's kxk, padded to keep the map's size). */
    public static final int ATTENTION_KERNEL = 3;

    /** The output a model's prediction is read from: the blended logits with an attention branch, else {@link #LOGITS}. */
    public static String logits(Graph graph) {
        return graph.outputs().contains(BLENDED_LOGITS) ? BLENDED_LOGITS : LOGITS;
    }

    /** The branch forms by name, for command lines and model-file metadata: "1x1" and "attention-max" / "attention-mean". */
    public static Op.ChannelSqueeze parseBranch(String name) {
        return switch (name) {
            case "1x1" -> null;
            case "attention-max" -> new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MAX, 1);
            case "attention-mean" -> new Op.ChannelSqueeze(Op.ChannelSqueeze.Squeeze.MEAN, 1);
            default -> throw new IllegalArgumentException("silhouette branch '" + name + "' is unknown; expected 1x1, attention-max or attention-mean");
        };
    }

    /** The name {@link #parseBranch} reads back. */
    public static String branchName(Op.ChannelSqueeze attention) {
        if (attention == null) return "1x1";
        return switch (attention.mode()) {
            case MAX -> "attention-max";
            case MEAN -> "attention-mean";
            case TOP_K_BY_MEAN, TOP_K_BY_STD -> throw new IllegalArgumentException("the attention branch squeezes by max or mean, not " + attention.mode());
        };
    }

    /**
     * @param silhouetteAfter block after which the silhouette branch reads its input ("stem", "layer1",
     *                        "layer2.0", ...), or null for none
     * @param attention       null for the method's 1x1 branch; else the attention branch (the original code's
     *                        form), whose attention map this squeeze turns into the silhouette
     */
    public record Options(int numClasses, int inputSize, String silhouetteAfter, long seed, Op.ChannelSqueeze attention) {
        public Options {
            if (numClasses < 1) throw new IllegalArgumentException("number of classes " + numClasses + " must be positive");
            if (inputSize < 8) throw new IllegalArgumentException("input size " + inputSize + " is below the minimum of 8");
            if (attention != null) branchName(attention);
        }

        /** The 1x1 branch (or none). */
        public Options(int numClasses, int inputSize, String silhouetteAfter, long seed) {
            this(numClasses, inputSize, silhouetteAfter, seed, null);
        }

        public Options withAttention(Op.ChannelSqueeze squeeze) {
            return new Options(numClasses, inputSize, silhouetteAfter, seed, squeeze);
        }
    }

    public static final Map<String, String> CATALOG = catalog();

    private static Map<String, String> catalog() {
        Map<String, String> m = new LinkedHashMap<>();
        m.put("resnet20", "CIFAR ResNet-20, 3x32x32 input");
        m.put("resnet32", "CIFAR ResNet-32, 3x32x32 input");
        m.put("resnet56", "CIFAR ResNet-56, 3x32x32 input");
        m.put("resnet18", "ImageNet ResNet-18 (torchvision), 3x224x224 input");
        m.put("resnet50", "ImageNet ResNet-50 (torchvision), 3x224x224 input");
        m.put("fmnist-resnet", "small ResNet for 1x28x28 input (Fashion-MNIST), silhouette after layer1");
        m.put("cluttered-resnet", "small ResNet with a stride-2 stem for 1x60x60 input (cluttered Fashion-MNIST), silhouette after layer1");
        return Map.copyOf(m);
    }

    /** Default options of a catalog model: its native input size and class count, its usual branch place. */
    public static Options defaults(String model) {
        return switch (model) {
            case "resnet20", "resnet32", "resnet56" -> new Options(10, 32, null, 0);
            case "resnet18", "resnet50" -> new Options(1000, 224, null, 0);
            case "fmnist-resnet" -> new Options(10, 28, "layer1", 0);
            case "cluttered-resnet" -> new Options(10, 60, "layer1", 0);
            default -> throw unknown(model);
        };
    }

    public static Graph build(String model, Options o) {
        return switch (model) {
            case "resnet20" -> cifarResNet(3, o);
            case "resnet32" -> cifarResNet(5, o);
            case "resnet56" -> cifarResNet(9, o);
            case "resnet18" -> imageNetResNet(new int[] {2, 2, 2, 2}, false, o);
            case "resnet50" -> imageNetResNet(new int[] {3, 4, 6, 3}, true, o);
            case "fmnist-resnet" -> smallResNet(o, 1);
            case "cluttered-resnet" -> smallResNet(o, 2);
            default -> throw unknown(model);
        };
    }

    private static IllegalArgumentException unknown(String model) {
        return new IllegalArgumentException("unknown model '" + model + "'; known models: " + String.join(", ", CATALOG.keySet().stream().sorted().toList()));
    }

    /** CIFAR ResNet (He et al. 2016, 6n+2 layers), projection shortcuts (option B) where shapes change. */
    private static Graph cifarResNet(int blocksPerStage, Options o) {
        Net net = new Net(o, 3);
        String x = net.convBnRelu("conv1", "bn1", "relu", net.input, 16, Window.square(3, 1, 1));
        net.block("stem", x);
        int[] widths = {16, 32, 64};
        for (int stage = 0; stage < 3; stage++) {
            for (int i = 0; i < blocksPerStage; i++) {
                String name = "layer" + (stage + 1) + "." + i;
                x = net.basicBlock(name, x, widths[stage], stage > 0 && i == 0 ? 2 : 1);
                net.block(name, x);
            }
            net.block("layer" + (stage + 1), x);
        }
        return net.head(x);
    }

    /** torchvision ResNet-18/50: 7x7/2 stem, max-pool, four stages, global pooling, fc. */
    private static Graph imageNetResNet(int[] blocks, boolean bottleneck, Options o) {
        Net net = new Net(o, 3);
        String x = net.convBnRelu("conv1", "bn1", "relu", net.input, 64, Window.square(7, 2, 3));
        x = net.b.add("maxpool", new Op.MaxPool(Window.square(3, 2, 1)), x);
        net.block("stem", x);
        for (int stage = 0; stage < 4; stage++) {
            int width = 64 << stage;
            for (int i = 0; i < blocks[stage]; i++) {
                String name = "layer" + (stage + 1) + "." + i;
                int stride = stage > 0 && i == 0 ? 2 : 1;
                x = bottleneck ? net.bottleneck(name, x, width, stride) : net.basicBlock(name, x, width, stride);
                net.block(name, x);
            }
            net.block("layer" + (stage + 1), x);
        }
        return net.head(x);
    }

    /**
     * Three stages of one basic block each (16, 32, 64 channels; at 28, 14, 7 pixels for 28x28 input): about 78k
     * parameters. A stem of stride 2 halves a larger canvas first (60x60 to 30, 15, 8), so the stages cost about
     * what they cost on 28x28 and the silhouette after layer1 still has 30x30 pixels to place the item in.
     */
    private static Graph smallResNet(Options o, int stemStride) {
        Net net = new Net(o, 1);
        String x = net.convBnRelu("conv1", "bn1", "relu", net.input, 16, Window.square(3, stemStride, 1));
        net.block("stem", x);
        int[] widths = {16, 32, 64};
        for (int stage = 0; stage < 3; stage++) {
            x = net.basicBlock("layer" + (stage + 1) + ".0", x, widths[stage], stage > 0 ? 2 : 1);
            net.block("layer" + (stage + 1) + ".0", x);
            net.block("layer" + (stage + 1), x);
        }
        return net.head(x);
    }

    /** Shared building steps; registers every block's output so the silhouette branch can attach to it. */
    private static final class Net {
        final GraphBuilder b;
        final Options options;
        final String input;
        final List<String> blockNames = new ArrayList<>();
        boolean silhouetteAdded;
        String auxLogits;

        Net(Options o, int channels) {
            this.options = o;
            this.b = new GraphBuilder(o.seed());
            this.input = b.input("input", channels, o.inputSize(), o.inputSize());
        }

        String convBnRelu(String conv, String bn, String relu, String in, int out, Window w) {
            return b.relu(relu, b.batchNorm(bn, b.conv(conv, in, out, w, 1, false)));
        }

        void block(String name, String output) {
            blockNames.add(name);
            if (name.equals(options.silhouetteAfter())) {
                if (options.attention() == null) silhouetteBranch(output);
                else attentionBranch(output);
            }
        }

        /**
         * The auxiliary branch of the method: 1x1 conv to one channel, BatchNorm, sigmoid. Sigmoid (not
         * ReLU) keeps the map in (0, 1) and trained better in the Attention Branch Network design.
         */
        void silhouetteBranch(String from) {
            String conv = b.conv(SILHOUETTE + ".conv", from, 1, Window.square(1, 1, 0), 1, false);
            String bn = b.batchNorm(SILHOUETTE + ".bn", conv);
            b.add(SILHOUETTE, new Op.Sigmoid(), bn);
            silhouetteAdded = true;
        }

        /**
         * The attention branch of the original code (Attention Branch Network form): a kxk convolution to one
         * channel per class (the attention map), global average pooling to auxiliary class logits, which
         * {@link #head} blends into the prediction (the branch learns from the classification loss that way),
         * and the map squeezed across channels as the silhouette. Without the original's optional max-pool.
         */
        void attentionBranch(String from) {
            String map = b.conv(SILHOUETTE + ".attention", from, options.numClasses(),
                    Window.square(ATTENTION_KERNEL, 1, ATTENTION_KERNEL / 2), 1, true);
            String pooled = b.add(SILHOUETTE + ".avgpool", new Op.GlobalAvgPool(), map);
            auxLogits = b.add(SILHOUETTE + ".logits", new Op.Flatten(), pooled);
            b.add(SILHOUETTE, options.attention(), map);
            silhouetteAdded = true;
        }

        String basicBlock(String name, String in, int width, int stride) {
            String x = convBnRelu(name + ".conv1", name + ".bn1", name + ".relu1", in, width, Window.square(3, stride, 1));
            x = b.batchNorm(name + ".bn2", b.conv(name + ".conv2", x, width, Window.square(3, 1, 1), 1, false));
            return residual(name, in, x, width, stride);
        }

        String bottleneck(String name, String in, int width, int stride) {
            String x = convBnRelu(name + ".conv1", name + ".bn1", name + ".relu1", in, width, Window.square(1, 1, 0));
            x = convBnRelu(name + ".conv2", name + ".bn2", name + ".relu2", x, width, Window.square(3, stride, 1));
            x = b.batchNorm(name + ".bn3", b.conv(name + ".conv3", x, width * 4, Window.square(1, 1, 0), 1, false));
            return residual(name, in, x, width * 4, stride);
        }

        /** Identity shortcut, or a 1x1 projection with BatchNorm (torchvision's "downsample") when shapes change. */
        private String residual(String name, String in, String x, int outChannels, int stride) {
            String shortcut = in;
            if (stride != 1 || b.shape(in).c() != outChannels) {
                shortcut = b.batchNorm(name + ".downsample.1",
                        b.conv(name + ".downsample.0", in, outChannels, Window.square(1, stride, 0), 1, false));
            }
            return b.relu(name + ".relu", b.add(name + ".add", new Op.Add(), x, shortcut));
        }

        Graph head(String x) {
            if (options.silhouetteAfter() != null && !silhouetteAdded) {
                throw new IllegalArgumentException("cannot place the silhouette branch after '" + options.silhouetteAfter()
                        + "': no such block; blocks are " + String.join(", ", blockNames));
            }
            x = b.add("avgpool", new Op.GlobalAvgPool(), x);
            x = b.add("flatten", new Op.Flatten(), x);
            String logits = b.linear(LOGITS, x, options.numClasses());
            if (auxLogits != null) logits = b.add(BLENDED_LOGITS, new Op.LogitBlend(), logits, auxLogits);
            b.output(logits);
            if (silhouetteAdded) b.output(SILHOUETTE);
            return b.build();
        }
    }
}
