package dev.silhouette.onnx;

import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.onnx.proto.Onnx.NodeProto;
import dev.silhouette.tensor.Tensor;
import org.testng.SkipException;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.DataProvider;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertNotNull;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.fail;

/**
 * Models exported by PyTorch's own exporter (tests/peers/pytorch/export_onnx_models.py: torchvision
 * ResNet-18 and MobileNetV2, a ResNet-20 with a silhouette branch; BatchNorm kept or folded; opsets 13
 * and 17), run on the CPU backend against PyTorch's outputs: largest difference within
 * {@link Tolerances#NETWORK_RELATIVE} of the largest output magnitude. The models are exported into
 * target/pytorch-onnx by Debian's PyTorch when absent (or older than the script); without it the test
 * skips, saying what to install. -Dsilhouette.pytorch.models=DIR uses models exported elsewhere instead.
 */
public class OnnxPyTorchPeerTest {
    private static final Path SCRIPT = Path.of("tests/peers/pytorch/export_onnx_models.py");
    /** Debian's interpreter: the one python3-torch installs into (a python3 earlier on PATH may not see it). */
    private static final String PYTHON = "/usr/bin/python3";
    private static final List<String> MODELS = List.of("resnet18", "mobilenet_v2", "resnet20_silhouette");
    private static final List<String> VARIANTS = List.of("bn", "folded");
    private static final List<Integer> OPSETS = List.of(13, 17);

    private Path dir;

    @BeforeClass
    public void exportModels() throws IOException, InterruptedException {
        String given = System.getProperty("silhouette.pytorch.models");
        if (given != null) {
            dir = Path.of(given);
            return;
        }
        dir = Path.of("target/pytorch-onnx");
        if (upToDate()) return;
        try {
            Process probe = new ProcessBuilder(PYTHON, "-c", "import torch, torchvision").redirectErrorStream(true).start();
            String said = new String(probe.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            if (probe.waitFor() != 0) throw new SkipException(PYTHON + " cannot import torch and torchvision (" + said.lines().reduce((a, b) -> b).orElse("")
                    + "): apt-get install python3-torch python3-torchvision");
        } catch (IOException e) {
            throw new SkipException(PYTHON + " is missing: apt-get install python3-torch python3-torchvision (" + e.getMessage() + ")");
        }
        System.out.println("OnnxPyTorchPeerTest: exporting the models with PyTorch into " + dir);
        // Captured, not inherited: surefire's forked JVM talks to Maven over its own stdout.
        Process export = new ProcessBuilder(PYTHON, SCRIPT.toString(), "--out", dir.toString()).redirectErrorStream(true).start();
        String output = new String(export.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        System.out.print(output);
        if (!export.waitFor(10, TimeUnit.MINUTES)) {
            export.destroyForcibly();
            fail(SCRIPT + " did not finish in 10 minutes:\n" + output);
        }
        if (export.exitValue() != 0) fail(SCRIPT + " failed with exit code " + export.exitValue() + ":\n" + output);
    }

    /** Every model and reference present and newer than the script that writes them. */
    private boolean upToDate() throws IOException {
        for (Object[] c : cases()) {
            for (Path p : List.of(model(c), reference(c))) {
                if (!Files.exists(p) || Files.getLastModifiedTime(p).compareTo(Files.getLastModifiedTime(SCRIPT)) < 0) return false;
            }
        }
        return true;
    }

    @DataProvider
    public static Object[][] cases() {
        List<Object[]> cases = new ArrayList<>();
        for (String m : MODELS) for (String v : VARIANTS) for (int opset : OPSETS) cases.add(new Object[] {m, v, opset});
        return cases.toArray(Object[][]::new);
    }

    private Path model(Object[] c) {
        return dir.resolve(c[0] + "_" + c[1] + "_opset" + c[2] + ".onnx");
    }

    private Path reference(Object[] c) {
        return dir.resolve(c[0] + "_" + c[1] + "_opset" + c[2] + ".reference.safetensors");
    }

    @Test(dataProvider = "cases")
    public void matchesPyTorch(String name, String variant, int opset) throws IOException {
        Object[] c = {name, variant, opset};
        Path model = model(c);
        assertTrue(Files.exists(model), "no exported model " + model);
        byte[] bytes = Files.readAllBytes(model);
        List<String> opTypes = OnnxImporter.parse(bytes, model.toString()).getGraph().getNodeList().stream().map(NodeProto::getOpType).toList();
        // Both variants must really differ: "bn" keeps the exporter's BatchNormalization nodes, "folded" has
        // them fused into the convolutions.
        long batchNorms = opTypes.stream().filter("BatchNormalization"::equals).count();
        if (variant.equals("bn")) assertTrue(batchNorms > 0, model + " has no BatchNormalization node: " + opTypes);
        else assertEquals(batchNorms, 0, model + " still has BatchNormalization nodes");

        OnnxImporter.Imported imported = OnnxImporter.read(bytes, model.toAbsolutePath().getParent(), model.toString(), OnnxImporter.Options.defaults());
        assertEquals(imported.opset(), opset, model + " opset");
        if (name.contains("silhouette")) assertEquals(imported.silhouette(), "silhouette", model + ": " + imported.note());
        Map<String, Tensor> ref = SafeTensors.read(reference(c));
        Map<String, Tensor> out = new CpuBackend().run(imported.graph(), Map.of("input", ref.get("input")), List.copyOf(imported.outputNames().values()));
        StringBuilder errors = new StringBuilder();
        for (Map.Entry<String, String> o : imported.outputNames().entrySet()) {
            Tensor expected = ref.get(o.getKey());
            assertNotNull(expected, model + ": reference lacks output " + o.getKey());
            // No floor under the scale: these random-weight outputs are mostly below 1 in magnitude.
            double relative = OnnxOpsPeerTest.assertClose(out.get(o.getValue()), expected, Tolerances.NETWORK_RELATIVE, 0, model + " output " + o.getKey() + " vs PyTorch");
            errors.append(String.format(" %s %.2e", o.getKey(), relative));
        }
        System.out.println("OnnxPyTorchPeerTest " + name + " " + variant + " opset " + opset + ": max relative error" + errors);
    }
}
