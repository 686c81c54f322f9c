package dev.silhouette.cli;

import dev.silhouette.io.AtomicFiles;
import com.google.gson.GsonBuilder;
import dev.silhouette.backend.cpu.RegionOps;
import dev.silhouette.quant.RegionPolicy;
import dev.silhouette.tensor.Tensor;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The main job's pictures: silhouettes over test images, region masks per layer size, and accuracy
 * against average activation bits. Every file is written to a temporary name beside its target and
 * moved into place, so a failed run leaves no half-written picture.
 */
final class Pictures {
    private static final int SCALE = 4, GAP = 6, LABEL_W = 150;
    private static final Color[] BITS = {null, new Color(0x30, 0x12, 0x3b), new Color(0x46, 0x62, 0xd7), new Color(0x1a, 0xe4, 0xb6),
            new Color(0xa4, 0xfc, 0x3c), new Color(0xfa, 0xba, 0x39), new Color(0xe4, 0x5a, 0x0f), new Color(0xb0, 0x24, 0x02), new Color(0x7a, 0x04, 0x03)};
    private static boolean textWorks = true;

    private Pictures() {}

    static List<String> drawAll(Path dir, MainJob.Views v, MainJob.Result result, MainJob.Settings settings) {
        List<String> written = new ArrayList<>(drawSilhouettes(dir, v, settings));
        written.add(drawAccuracyVsBits(dir, result.rows()));
        return written;
    }

    /** The silhouettes and masks over the first test images. */
    static List<String> drawSilhouettes(Path dir, MainJob.Views v, MainJob.Settings settings) {
        prepare(dir);
        return List.of(write(dir.resolve("silhouettes.png"), silhouettes(v)), write(dir.resolve("masks.png"), masks(v, settings)));
    }

    /** Accuracy against activation bits of {@code rows}, the first being FP32. */
    static String drawAccuracyVsBits(Path dir, List<MainJob.Row> rows) {
        prepare(dir);
        return write(dir.resolve("accuracy-vs-bits.png"), accuracyVsBits(rows));
    }

    private static void prepare(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot create the picture folder " + dir + ": " + e.getMessage(), e);
        }
        System.setProperty("java.awt.headless", "true");
    }

    static String writeJson(Path file, Object report) {
        String text = new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeSpecialFloatingPointValues().create().toJson(report);
        return atomically(file, tmp -> Files.writeString(tmp, text + "\n", StandardCharsets.UTF_8));
    }

    private static String atomically(Path file, AtomicFiles.Content content) {
        try {
            AtomicFiles.write(file, content);
            return file.toString();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static String write(Path file, BufferedImage image) {
        return atomically(file, tmp -> {
            if (!ImageIO.write(image, "png", tmp.toFile())) throw new IOException("no PNG writer in this JVM");
        });
    }

    /** Rows: the input images, the learned silhouette over them, the training-free one over them. */
    private static BufferedImage silhouettes(MainJob.Views v) {
        int n = v.images().shape().n(), h = v.images().shape().h(), w = v.images().shape().w();
        int cellW = w * SCALE, cellH = h * SCALE;
        BufferedImage img = canvas(LABEL_W + n * (cellW + GAP), 30 + 3 * (cellH + GAP));
        Graphics2D g = graphics(img);
        label(g, "silhouettes (per image min-max scaled; dark blue low, yellow high)", 8, 18);
        String[] rows = {"input", "learned branch", "training-free"};
        Tensor[] maps = {null, v.learned(), v.trainingFree()};
        for (int row = 0; row < 3; row++) {
            int y0 = 30 + row * (cellH + GAP);
            label(g, rows[row], 8, y0 + cellH / 2);
            for (int i = 0; i < n; i++) {
                int x0 = LABEL_W + i * (cellW + GAP);
                float[] s = maps[row] == null ? null : scaled(maps[row], i, h, w);
                for (int y = 0; y < cellH; y++)
                    for (int x = 0; x < cellW; x++) {
                        float gray = v.images().get(i, 0, y / SCALE, x / SCALE);
                        int rgb;
                        if (s == null) {
                            int c = Math.round(gray * 255);
                            rgb = c << 16 | c << 8 | c;
                        } else {
                            Color heat = heat(s[(y / SCALE) * w + x / SCALE]);
                            rgb = mix(heat, gray);
                        }
                        img.setRGB(x0 + x, y0 + y, rgb);
                    }
            }
        }
        g.dispose();
        return img;
    }

    /** One image's silhouette resized (nearest) to the input size and scaled to [0, 1] for display. */
    private static float[] scaled(Tensor s, int image, int h, int w) {
        int sh = s.shape().h(), sw = s.shape().w();
        float[] out = new float[h * w];
        float lo = Float.POSITIVE_INFINITY, hi = Float.NEGATIVE_INFINITY;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float val = s.get(image, 0, y * sh / h, x * sw / w);
                out[y * w + x] = val;
                lo = Math.min(lo, val);
                hi = Math.max(hi, val);
            }
        for (int i = 0; i < out.length; i++) out[i] = hi > lo ? (out[i] - lo) / (hi - lo) : 0.5f;
        return out;
    }

    /** Per layer size, the main policy's region map of each image, coloured by the region's bits. */
    private static BufferedImage masks(MainJob.Views v, MainJob.Settings settings) {
        RegionPolicy policy = settings.policies().getFirst();
        int n = Math.min(4, v.images().shape().n());
        int imageH = v.images().shape().h(), imageW = v.images().shape().w();
        int cell = Math.max(imageH, imageW) * SCALE;
        List<int[]> sizes = v.layerSizes();
        int rows = 2 * sizes.size();
        BufferedImage img = canvas(LABEL_W + (n + 1) * (cell + GAP), 54 + rows * (cell + GAP));
        Graphics2D g = graphics(img);
        label(g, "region masks of " + policy + " at each receiving layer's input size (" + settings.resize().name().toLowerCase() + ", "
                + settings.order().name().toLowerCase().replace('_', ' ') + ")", 8, 18);
        int lx = 8;
        for (var r : policy.regions()) {
            g.setColor(BITS[r.bits()]);
            g.fillRect(lx, 28, 14, 14);
            label(g, r.bits() + " bits (" + r.percent() + "%)", lx + 18, 40);
            lx += 120;
        }
        int row = 0;
        for (String source : new String[] {"learned", "training-free"}) {
            Tensor sil = source.equals("learned") ? v.learned() : v.trainingFree();
            for (int[] size : sizes) {
                int y0 = 54 + row * (cell + GAP);
                label(g, source + " " + size[0] + "x" + size[1], 8, y0 + cell / 2);
                byte[] map = RegionOps.regionMap(sil, policy, size[0], size[1], settings.resize(), settings.order());
                for (int i = 0; i < n; i++) {
                    int x0 = LABEL_W + i * (cell + GAP);
                    for (int y = 0; y < cell; y++)
                        for (int x = 0; x < cell; x++) {
                            int r = map[(i * size[0] + y * size[0] / cell) * size[1] + x * size[1] / cell];
                            float gray = v.images().get(i, 0, y * imageH / cell, x * imageW / cell);
                            img.setRGB(x0 + x, y0 + y, mix(BITS[policy.bits(r)], gray));
                        }
                }
                row++;
            }
        }
        g.dispose();
        return img;
    }

    /** Accuracy against measured average activation bits: uniform as a line, region policies and DRQ as points. */
    private static BufferedImage accuracyVsBits(List<MainJob.Row> rows) {
        int width = 960, height = 560, left = 70, right = 270, top = 40, bottom = 60;
        BufferedImage img = canvas(width, height);
        Graphics2D g = graphics(img);
        MainJob.Row fp = rows.getFirst();
        double xMax = 9, yMin = 100, yMax = 100 * fp.accuracy() + 1;
        for (MainJob.Row r : rows) if (r != fp) yMin = Math.min(yMin, 100 * r.accuracy());
        // Collapsed configurations (W2A2 of an untrained model) would flatten everything else: they sit
        // on the bottom edge with their value written beside them.
        yMin = Math.max(Math.floor(yMin - 1), Math.floor(100 * fp.accuracy() - 6));
        int plotW = width - left - right, plotH = height - top - bottom;
        double fyMin = yMin;
        java.util.function.DoubleUnaryOperator px = b -> left + b / xMax * plotW;
        java.util.function.DoubleUnaryOperator py = a -> top + (yMax - a) / (yMax - fyMin) * plotH;
        g.setColor(new Color(0xdd, 0xdd, 0xdd));
        for (int b = 1; b <= 8; b++) g.drawLine((int) px.applyAsDouble(b), top, (int) px.applyAsDouble(b), top + plotH);
        double step = (yMax - yMin) > 40 ? 10 : (yMax - yMin) > 15 ? 5 : 1;
        for (double a = Math.ceil(yMin / step) * step; a <= yMax; a += step) g.drawLine(left, (int) py.applyAsDouble(a), left + plotW, (int) py.applyAsDouble(a));
        g.setColor(Color.BLACK);
        g.drawRect(left, top, plotW, plotH);
        for (int b = 1; b <= 8; b++) label(g, String.valueOf(b), (int) px.applyAsDouble(b) - 3, top + plotH + 16);
        for (double a = Math.ceil(yMin / step) * step; a <= yMax; a += step) label(g, String.format("%.0f%%", a), 20, (int) py.applyAsDouble(a) + 4);
        label(g, "average activation bits of the receiving layers (measured)", left + plotW / 2 - 170, height - 20);
        label(g, "test accuracy against activation bits", left, 24);
        g.setStroke(new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
        g.setColor(Color.GRAY);
        g.drawLine(left, (int) py.applyAsDouble(100 * fp.accuracy()), left + plotW, (int) py.applyAsDouble(100 * fp.accuracy()));
        label(g, String.format("FP32 %.2f%%", 100 * fp.accuracy()), left + 8, (int) py.applyAsDouble(100 * fp.accuracy()) - 4);
        g.setStroke(new BasicStroke(2f));
        int[] last = null;
        Color uniform = Color.BLACK, learned = new Color(0x1f, 0x77, 0xb4), free = new Color(0xff, 0x7f, 0x0e), drq = new Color(0xd6, 0x27, 0x28),
                noise = new Color(0x99, 0x99, 0x99), ptq = new Color(0x94, 0x67, 0xbd);
        List<MainJob.Row> uniformRows = new ArrayList<>();
        for (MainJob.Row r : rows) if (r.name().matches("W(\\d)A\\1")) uniformRows.add(r);
        uniformRows.sort(java.util.Comparator.comparingDouble(MainJob.Row::activationBits));
        g.setColor(uniform);
        for (MainJob.Row r : uniformRows) {
            int[] p = {(int) px.applyAsDouble(r.activationBits()), (int) py.applyAsDouble(Math.max(100 * r.accuracy(), fyMin))};
            if (last != null) g.drawLine(last[0], last[1], p[0], p[1]);
            last = p;
        }
        int labelY = top + 16;
        int offChart = 0;
        for (MainJob.Row r : rows) {
            if (r == fp) continue;
            Color c = r.name().matches("W\\dA\\d") ? uniform : r.name().equals(MainJob.PTQ_ROW) ? ptq : r.name().startsWith("DRQ") ? drq
                    : r.silhouette().equals("learned") ? learned
                    : r.silhouette().equals(MainJob.NOISE) ? noise : free;
            int x = (int) px.applyAsDouble(r.activationBits()), y = (int) py.applyAsDouble(Math.max(100 * r.accuracy(), yMin));
            g.setColor(c);
            if (100 * r.accuracy() < yMin) {
                // Off the bottom: labels stacked upwards, so points at nearby widths stay readable.
                String what = r.silhouette().equals("-") ? r.name() : r.name() + ", " + r.silhouette();
                label(g, String.format("%s: %.1f%% (below)", what, 100 * r.accuracy()), x + 8, y - 6 - 14 * offChart++);
            }
            if (r.name().contains("per-region")) g.drawRect(x - 4, y - 4, 8, 8);
            else if (r.name().matches("W\\dA\\d") && !uniformRows.contains(r)) g.drawOval(x - 4, y - 4, 8, 8);
            else g.fillOval(x - 4, y - 4, 8, 8);
        }
        String[][] legend = {{"uniform WbAb", "0"}, {"region, learned silhouette", "1"}, {"region, training-free silhouette", "2"}, {"DRQ", "3"},
                {"region, noise silhouette (control)", "4"}, {"W4A4 per-channel ACIQ PTQ", "5"}, {"filled: shared weights", "-"}, {"square: per-region weights", "-"},
                {"ring: uniform, main policy's weights", "-"}};
        Color[] legendColors = {uniform, learned, free, drq, noise, ptq};
        for (String[] l : legend) {
            if (!l[1].equals("-")) {
                g.setColor(legendColors[Integer.parseInt(l[1])]);
                g.fillOval(left + plotW + 12, labelY - 8, 8, 8);
            }
            g.setColor(Color.BLACK);
            label(g, l[0], left + plotW + 26, labelY);
            labelY += 18;
        }
        g.dispose();
        return img;
    }

    private static BufferedImage canvas(int w, int h) {
        BufferedImage img = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, w, h);
        g.dispose();
        return img;
    }

    private static Graphics2D graphics(BufferedImage img) {
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.BLACK);
        return g;
    }

    /**
     * Text, when this JVM can render it: a headless JDK without fonts fails inside font loading, and
     * the pictures are still worth having without their labels.
     */
    private static void label(Graphics2D g, String text, int x, int y) {
        if (!textWorks) return;
        try {
            Color c = g.getColor();
            g.setColor(Color.BLACK);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            g.drawString(text, x, y);
            g.setColor(c);
        } catch (RuntimeException | InternalError | UnsatisfiedLinkError e) {
            textWorks = false;
        }
    }

    /** Dark blue (0) through green to yellow (1), a perceptually ordered ramp (viridis end points). */
    private static Color heat(float t) {
        t = Math.clamp(t, 0f, 1f);
        float[][] stops = {{0x44, 0x01, 0x54}, {0x3b, 0x52, 0x8b}, {0x21, 0x91, 0x8c}, {0x5e, 0xc9, 0x62}, {0xfd, 0xe7, 0x25}};
        float f = t * (stops.length - 1);
        int i = Math.min((int) f, stops.length - 2);
        float u = f - i;
        return new Color(Math.round(stops[i][0] + (stops[i + 1][0] - stops[i][0]) * u), Math.round(stops[i][1] + (stops[i + 1][1] - stops[i][1]) * u),
                Math.round(stops[i][2] + (stops[i + 1][2] - stops[i][2]) * u));
    }

    /** A colour shaded by the image underneath, so the garment stays visible through the overlay. */
    private static int mix(Color c, float gray) {
        float k = 0.45f + 0.55f * gray;
        return Math.round(c.getRed() * k) << 16 | Math.round(c.getGreen() * k) << 8 | Math.round(c.getBlue() * k);
    }
}
