package dev.silhouette.backend.cuda;

import dev.silhouette.quant.BitWidths;
import dev.silhouette.quant.PackedLayout;
import dev.silhouette.quant.SilhouetteThresholds;
import org.testng.annotations.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.util.Arrays;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * cuda/packed_layout.cuh and {@link PackedLayout} describe the same formats: the header's constants and
 * tables equal the Java table's, and every index the header pins with a static_assert (nvcc checks it
 * against the C++ formulas at build time) is what the Java layout computes for the same arguments, so
 * the C++ formulas and the Java ones agree on those points. Each kind of assert must be present, so
 * deleting the asserts cannot make this pass.
 */
public class PackedLayoutHeaderTest {
    private static String header() throws IOException {
        return Files.readString(BuiltinKernelsTest.root().resolve("cuda/packed_layout.cuh"));
    }

    private static int constant(String text, String name) {
        Matcher m = Pattern.compile("constexpr\\s+int\\s+" + name + "\\s*=\\s*(\\d+)\\s*;").matcher(text);
        assertTrue(m.find(), "packed_layout.cuh declares no constexpr int " + name);
        return Integer.parseInt(m.group(1));
    }

    private static int[] table(String text, String name) {
        Matcher m = Pattern.compile("constexpr\\s+int\\s+" + name + "\\[[^\\]]*\\]\\s*=\\s*\\{([^}]*)\\}").matcher(text);
        assertTrue(m.find(), "packed_layout.cuh declares no table " + name);
        return Arrays.stream(m.group(1).split(",")).map(String::strip).mapToInt(Integer::parseInt).toArray();
    }

    @Test
    public void constantsAgreeWithTheJavaTable() throws IOException {
        String h = header();
        assertEquals(constant(h, "WORD_BITS"), PackedLayout.WORD_BITS);
        assertEquals(constant(h, "MIN_BITS"), BitWidths.MIN);
        assertEquals(constant(h, "MAX_BITS"), BitWidths.MAX);
        assertEquals(constant(h, "MAX_REGIONS"), SilhouetteThresholds.MAX_REGIONS);
        assertEquals(constant(h, "MAX_PACKED_REGIONS"), RegionWidths.MAX_PACKED_REGIONS);
        assertEquals(constant(h, "REGION_BITS_FIELD"), RegionWidths.FIELD_BITS);
        assertTrue(h.contains("typedef uint64_t word_t;"), "words are 64-bit unsigned");
        assertTrue(h.contains("typedef uint8_t region_t;"), "region indices are bytes, as SilhouetteThresholds.regionMap's");
    }

    @Test
    public void denseTablesAgreeWithDense() throws IOException {
        String h = header();
        int[] perWord = table(h, "DENSE_CODES_PER_WORD"), spare = table(h, "DENSE_SPARE_BITS");
        assertEquals(perWord.length, BitWidths.MAX + 1);
        assertEquals(spare.length, BitWidths.MAX + 1);
        for (int b = BitWidths.MIN; b <= BitWidths.MAX; b++) {
            PackedLayout.Dense dense = new PackedLayout.Dense(b);
            assertEquals(perWord[b], dense.codesPerWord(), "codes per word at " + b + " bits");
            assertEquals(spare[b], PackedLayout.WORD_BITS - dense.codesPerWord() * b, "spare bits at " + b + " bits");
            // The highest code of a full word sits below the spare bits: pack the largest code there and look.
            int[] codes = new int[dense.codesPerWord()];
            codes[codes.length - 1] = (1 << b) - 1;
            long word = dense.pack(codes, false)[0];
            assertEquals(Long.numberOfLeadingZeros(word), spare[b], "unused high bits of a full word at " + b + " bits");
        }
    }

    private static final Pattern ASSERT = Pattern.compile("static_assert\\((?!sizeof)(\\w+)\\(([^()]*)\\)\\s*==\\s*(\\d+)\\s*,");

    @Test
    public void everyPinnedIndexIsTheJavaLayouts() throws IOException {
        Matcher m = ASSERT.matcher(header());
        int[] seen = new int[7];
        while (m.find()) {
            String f = m.group(1);
            long[] a = Arrays.stream(m.group(2).split(",")).map(String::strip).map(s -> s.replaceAll("u$", "")).mapToLong(PackedLayoutHeaderTest::parse).toArray();
            long expected = Long.parseLong(m.group(3));
            String at = f + Arrays.toString(a);
            switch (f) {
                case "bitplane_words" -> {
                    assertEquals(new PackedLayout.BitPlanes(1, (int) a[0]).words(), expected, at);
                    seen[0]++;
                }
                case "bitplane_words_per_position" -> {
                    assertEquals(new PackedLayout.BitPlanes((int) a[0], (int) a[1]).wordsPerPosition(), expected, at);
                    seen[1]++;
                }
                case "bitplane_index" -> {
                    assertEquals(new PackedLayout.BitPlanes((int) a[3], (int) a[4]).index((int) a[0], (int) a[1], (int) a[2]), expected, at);
                    seen[2]++;
                }
                case "dense_words" -> {
                    assertEquals(new PackedLayout.Dense((int) a[1]).words((int) a[0]), expected, at);
                    seen[3]++;
                }
                case "dense_word", "dense_shift" -> {
                    // Where Dense.pack puts code i: pack a lone 1 there and find its word and bit.
                    int i = (int) a[0], bits = (int) a[1];
                    int[] codes = new int[i + 1];
                    codes[i] = 1;
                    long[] words = new PackedLayout.Dense(bits).pack(codes, false);
                    int word = words.length - 1;
                    assertEquals(f.equals("dense_word") ? word : Long.numberOfTrailingZeros(words[word]), expected, at);
                    seen[f.equals("dense_word") ? 4 : 5]++;
                }
                case "region_bits" -> seen[6]++;
                default -> throw new AssertionError("packed_layout.cuh pins " + at + ", which this test does not know");
            }
        }
        for (int k = 0; k < seen.length - 1; k++) assertTrue(seen[k] > 0, "packed_layout.cuh pins no index of kind " + k + " " + Arrays.toString(seen));
    }

    /** The header's region_bits(0x432u, r) asserts: widths 2, 3, 4 packed as RegionWidths packs them. */
    @Test
    public void packedRegionWidthsAreTheHeaders() throws IOException {
        Matcher m = Pattern.compile("region_bits\\((0x[0-9a-fA-F]+)u, (\\d)\\) == (\\d)").matcher(header());
        int checked = 0;
        int packed = new RegionWidths(new int[] {2, 3, 4}, new float[] {1, 1, 1}).packed();
        while (m.find()) {
            assertEquals(Integer.parseInt(m.group(1).substring(2), 16), packed, "the header's example packs widths 2, 3, 4");
            int r = Integer.parseInt(m.group(2));
            assertEquals((packed >>> (RegionWidths.FIELD_BITS * r)) & ((1 << RegionWidths.FIELD_BITS) - 1), Integer.parseInt(m.group(3)));
            checked++;
        }
        assertEquals(checked, 3);
    }

    private static long parse(String s) {
        return s.startsWith("0x") ? Long.parseLong(s.substring(2), 16) : Long.parseLong(s);
    }
}
