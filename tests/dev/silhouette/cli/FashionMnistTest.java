package dev.silhouette.cli;

import org.testng.SkipException;
import org.testng.annotations.Test;

import java.nio.file.Files;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;
import static org.testng.Assert.expectThrows;

/** The calibration images bundled in the jar are the training split's first 500, so a clean machine calibrates as this one does. */
public class FashionMnistTest {

    @Test
    public void bundledTrainingImagesAreTheFirstOfTheSplit() {
        FashionMnist bundled = FashionMnist.bundledTrainingSubset(500);
        assertEquals(bundled.labels().length, 500);
        assertEquals(bundled.images().shape().dim(0), 500);
        if (!Files.exists(FashionMnist.SYSTEM_DIR.resolve("train-images-idx3-ubyte.gz"))) {
            throw new SkipException("no training split in " + FashionMnist.SYSTEM_DIR + " to compare with");
        }
        FashionMnist system = FashionMnist.trainingSubset(null, 500);
        assertTrue(system.source().contains("training split"), system.source());
        assertEquals(bundled.labels(), system.labels());
        assertEquals(bundled.images().data(), system.images().data());
    }

    @Test
    public void refusesMoreThanIsBundled() {
        IllegalArgumentException e = expectThrows(IllegalArgumentException.class, () -> FashionMnist.bundledTrainingSubset(501));
        assertTrue(e.getMessage().contains("501") && e.getMessage().contains("500"), e.getMessage());
        assertEquals(FashionMnist.bundledTrainingSubset(7).labels().length, 7);
    }
}
