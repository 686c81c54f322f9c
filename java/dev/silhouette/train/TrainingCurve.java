package dev.silhouette.train;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.ToDoubleFunction;

/** Draws the per-epoch history as a PNG: losses on the left, accuracies on the right. Headless. */
public final class TrainingCurve {
    private TrainingCurve() {}

    private static final int W = 1000, H = 420, PANEL_W = 440, PANEL_H = 320, TOP = 50, LEFT = 60;
    private static final Color TRAIN = new Color(0x1f77b4), TEST = new Color(0xd62728);

    public static void write(List<Trainer.EpochRecord> history, String title, Path png) {
        System.setProperty("java.awt.headless", "true");
        BufferedImage img = new BufferedImage(W, H, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, W, H);
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 16));
        g.drawString(title, LEFT, 25);
        double maxLoss = 0;
        for (Trainer.EpochRecord r : history) maxLoss = Math.max(maxLoss, Math.max(r.trainLoss(), r.testLoss()));
        panel(g, LEFT, history, "loss", 0, maxLoss > 0 ? maxLoss * 1.05 : 1, Trainer.EpochRecord::trainLoss, Trainer.EpochRecord::testLoss, false);
        double minAcc = 1;
        for (Trainer.EpochRecord r : history) minAcc = Math.min(minAcc, Math.min(r.trainAccuracy(), r.testAccuracy()));
        panel(g, LEFT + PANEL_W + 60, history, "accuracy (%)", Math.floor(minAcc * 20) / 20, 1, Trainer.EpochRecord::trainAccuracy, Trainer.EpochRecord::testAccuracy, true);
        g.dispose();
        try {
            Path dir = png.toAbsolutePath().getParent();
            if (dir != null) Files.createDirectories(dir);
            ImageIO.write(img, "png", png.toFile());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write training curve " + png + ": " + e.getMessage(), e);
        }
    }

    private static void panel(Graphics2D g, int x0, List<Trainer.EpochRecord> history, String label, double lo, double hi,
                              ToDoubleFunction<Trainer.EpochRecord> train, ToDoubleFunction<Trainer.EpochRecord> test, boolean percent) {
        int y0 = TOP, epochs = Math.max(1, history.size());
        g.setColor(new Color(0xeeeeee));
        for (int i = 0; i <= 4; i++) g.drawLine(x0, y0 + PANEL_H * i / 4, x0 + PANEL_W, y0 + PANEL_H * i / 4);
        g.setColor(Color.BLACK);
        g.drawRect(x0, y0, PANEL_W, PANEL_H);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (int i = 0; i <= 4; i++) {
            double v = hi - (hi - lo) * i / 4;
            g.drawString(percent ? String.format("%.1f", 100 * v) : String.format("%.3f", v), x0 - 48, y0 + PANEL_H * i / 4 + 4);
        }
        for (int e = 1; e <= epochs; e++) {
            if (epochs > 20 && e % 5 != 0) continue;
            g.drawString(Integer.toString(e), xAt(x0, e, epochs) - 4, y0 + PANEL_H + 16);
        }
        g.drawString("epoch", x0 + PANEL_W / 2 - 15, y0 + PANEL_H + 34);
        g.drawString(label, x0, y0 - 8);
        series(g, x0, history, lo, hi, train, TRAIN);
        series(g, x0, history, lo, hi, test, TEST);
        g.setColor(TRAIN);
        g.drawString("train", x0 + PANEL_W - 90, y0 - 8);
        g.setColor(TEST);
        g.drawString("test", x0 + PANEL_W - 45, y0 - 8);
        if (!history.isEmpty()) {
            g.setColor(TEST);
            double last = test.applyAsDouble(history.getLast());
            g.drawString(percent ? String.format("%.2f%%", 100 * last) : String.format("%.4f", last), xAt(x0, epochs, epochs) - 50, yAt(y0, last, lo, hi) - 8);
        }
    }

    private static void series(Graphics2D g, int x0, List<Trainer.EpochRecord> history, double lo, double hi,
                               ToDoubleFunction<Trainer.EpochRecord> f, Color color) {
        g.setColor(color);
        g.setStroke(new BasicStroke(2f));
        int epochs = Math.max(1, history.size());
        for (int i = 0; i < history.size(); i++) {
            int x = xAt(x0, i + 1, epochs), y = yAt(TOP, f.applyAsDouble(history.get(i)), lo, hi);
            g.fillOval(x - 3, y - 3, 6, 6);
            if (i > 0) g.drawLine(xAt(x0, i, epochs), yAt(TOP, f.applyAsDouble(history.get(i - 1)), lo, hi), x, y);
        }
        g.setStroke(new BasicStroke(1f));
    }

    private static int xAt(int x0, int epoch, int epochs) {
        return x0 + (epochs == 1 ? PANEL_W / 2 : (int) Math.round((epoch - 1) * (PANEL_W - 20.0) / (epochs - 1)) + 10);
    }

    private static int yAt(int y0, double v, double lo, double hi) {
        double t = (Math.clamp(v, lo, hi) - lo) / (hi - lo);
        return y0 + (int) Math.round((1 - t) * PANEL_H);
    }
}
