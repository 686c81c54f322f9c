package dev.silhouette;

import com.tngtech.archunit.core.domain.JavaClasses;
import com.tngtech.archunit.core.importer.ClassFileImporter;
import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.lang.ArchRule;
import org.testng.annotations.Test;

import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/**
 * The layer order of the README's layout section, read from the compiled classes (imports, fully qualified
 * names, method calls alike): every package uses only those below it, and no two packages depend on each
 * other in a cycle.
 */
public class LayeringTest {
    static final JavaClasses MAIN = new ClassFileImporter().withImportOption(ImportOption.Predefined.DO_NOT_INCLUDE_TESTS).importPackages("dev.silhouette");

    /** From the top: cli and spark (neither uses the other: the CLI must run without Spark on the classpath), conformance, serve, api, train, pipeline, backend (cpu, cuda), onnx, graph, quant, io, tensor. */
    static ArchRule layers() {
        return layeredArchitecture().consideringOnlyDependenciesInLayers().withOptionalLayers(true)
                .layer("cli").definedBy("dev.silhouette.cli..")
                .layer("spark").definedBy("dev.silhouette.spark..")
                .layer("conformance").definedBy("dev.silhouette.conformance..")
                .layer("serve").definedBy("dev.silhouette.serve..")
                .layer("api").definedBy("dev.silhouette.api..")
                .layer("train").definedBy("dev.silhouette.train..")
                .layer("pipeline").definedBy("dev.silhouette.pipeline..")
                .layer("backend").definedBy("dev.silhouette.backend..")
                .layer("onnx").definedBy("dev.silhouette.onnx..")
                .layer("graph").definedBy("dev.silhouette.graph..")
                .layer("quant").definedBy("dev.silhouette.quant..")
                .layer("io").definedBy("dev.silhouette.io..")
                .layer("tensor").definedBy("dev.silhouette.tensor..")
                .whereLayer("cli").mayNotBeAccessedByAnyLayer()
                .whereLayer("spark").mayNotBeAccessedByAnyLayer()
                .whereLayer("conformance").mayOnlyBeAccessedByLayers("cli")
                .whereLayer("serve").mayOnlyBeAccessedByLayers("cli")
                .whereLayer("api").mayOnlyBeAccessedByLayers("serve", "conformance", "spark", "cli")
                .whereLayer("train").mayOnlyBeAccessedByLayers("api", "serve", "conformance", "spark", "cli")
                .whereLayer("pipeline").mayOnlyBeAccessedByLayers("train", "api", "serve", "conformance", "spark", "cli")
                .whereLayer("backend").mayOnlyBeAccessedByLayers("pipeline", "train", "api", "serve", "conformance", "spark", "cli")
                .whereLayer("onnx").mayOnlyBeAccessedByLayers("backend", "pipeline", "train", "api", "serve", "conformance", "spark", "cli")
                .whereLayer("graph").mayOnlyBeAccessedByLayers("onnx", "backend", "pipeline", "train", "api", "serve", "conformance", "spark", "cli")
                .whereLayer("quant").mayOnlyBeAccessedByLayers("graph", "onnx", "backend", "pipeline", "train", "api", "serve", "conformance", "spark", "cli")
                .whereLayer("io").mayOnlyBeAccessedByLayers("quant", "graph", "onnx", "backend", "pipeline", "train", "api", "serve", "conformance", "spark", "cli");
    }

    @Test
    public void layersPointDownOnly() {
        layers().check(MAIN);
    }

    @Test
    public void noPackageCycles() {
        slices().matching("dev.silhouette.(*)..").should().beFreeOfCycles().check(MAIN);
    }

    /** The rules can fail: a quant class that reads the pipeline (tests/dev/silhouette/quant/UpwardImportFixture) breaks both. */
    @Test
    public void anUpwardImportFailsBothRules() throws ClassNotFoundException {
        // The fixture and a pipeline class that reads quant: enough for an upward edge and for a cycle.
        JavaClasses withFixture = new ClassFileImporter().importClasses(Class.forName("dev.silhouette.quant.UpwardImportFixture"),
                dev.silhouette.pipeline.Plans.class, dev.silhouette.quant.RegionPolicy.class);
        AssertionError layering = expectThrows(AssertionError.class, () -> layers().check(withFixture));
        assertTrue(layering.getMessage().contains("UpwardImportFixture"), layering.getMessage());
        AssertionError cycle = expectThrows(AssertionError.class, () -> slices().matching("dev.silhouette.(*)..").should().beFreeOfCycles().check(withFixture));
        assertTrue(cycle.getMessage().contains("UpwardImportFixture"), cycle.getMessage());
    }
}
