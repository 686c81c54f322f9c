package dev.silhouette.onnx;

import dev.silhouette.Tolerances;
import dev.silhouette.backend.cpu.CpuBackend;
import dev.silhouette.io.SafeTensors;
import dev.silhouette.tensor.Tensor;
import org.testng.SkipException;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * Models exported by PyTorch's own exporter (tests/peers/pytorch/export_onnx_models.py), run on the CPU
 * backend against PyTorch's outputs: largest difference within {@link Tolerances#NETWORK_RELATIVE} of
 * the largest output magnitude. UNVERIFIED here: the files need PyTorch, which this machine lacks, so the
 * test skips, saying so, when they are absent.
 */
public class OnnxPyTorchPeerTest {

    @Test
    public void pytorchExportsMatchPyTorch() throws IOException {
        Path dir = Path.of(System.getProperty("silhouette.pytorch.models", "tests/peers/pytorch/out"));
        List<Path> models;
        if (!Files.isDirectory(dir)) throw new SkipException("no PyTorch-exported models in " + dir + ": run tests/peers/pytorch/export_onnx_models.py where PyTorch is installed");
        try (var files = Files.list(dir)) {
            models = files.filter(p -> p.toString().endsWith(".onnx")).sorted().toList();
        }
        if (models.isEmpty()) throw new SkipException("no .onnx files in " + dir + ": run tests/peers/pytorch/export_onnx_models.py where PyTorch is installed");
        for (Path model : models) {
            Path reference = Path.of(model.toString().replaceFirst("\\.onnx$", ".reference.safetensors"));
            assertTrue(Files.exists(reference), "reference outputs " + reference);
            Map<String, Tensor> ref = SafeTensors.read(reference);
            OnnxImporter.Imported imported = OnnxImporter.read(model);
            if (model.getFileName().toString().contains("silhouette")) {
                assertEquals(imported.silhouette(), "silhouette", model + ": " + imported.note());
            }
            Map<String, Tensor> out = new CpuBackend().run(imported.graph(), Map.of("input", ref.get("input")),
                    List.copyOf(imported.outputNames().values()));
            for (Map.Entry<String, String> o : imported.outputNames().entrySet()) {
                Tensor expected = ref.get(o.getKey());
                assertTrue(expected != null, model + ": reference lacks output " + o.getKey());
                OnnxOpsPeerTest.assertClose(out.get(o.getValue()), expected, Tolerances.NETWORK_RELATIVE, model + " output " + o.getKey());
            }
        }
    }
}
