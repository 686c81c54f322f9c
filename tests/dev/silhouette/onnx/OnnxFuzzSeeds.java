package dev.silhouette.onnx;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/** Seeds for the ONNX fuzz target (dev.silhouette.fuzz.FuzzSeeds): one model per case of the op peer test, so every importer op is in the corpus. */
public final class OnnxFuzzSeeds {
    private OnnxFuzzSeeds() {}

    /** File-safe case name to model bytes. */
    public static Map<String, byte[]> opModels() {
        Map<String, byte[]> models = new LinkedHashMap<>();
        for (OnnxOpsPeerTest.Case c : OnnxOpsPeerTest.cases()) {
            models.put(c.name().replaceAll("[^A-Za-z0-9]+", "-").replaceAll("-$", ""), c.build().apply(new Random(1)).bytes());
        }
        return models;
    }
}
