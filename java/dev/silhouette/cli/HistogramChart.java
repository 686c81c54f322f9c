package dev.silhouette.cli;

import dev.silhouette.io.AtomicFiles;
import dev.silhouette.quant.ActivationStats;
import dev.silhouette.pipeline.Calibration;
import dev.silhouette.pipeline.QuantPlan;

import javax.imageio.ImageIO;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * One panel per quantized activation: its calibration histogram (log counts, 128 bars over [min, max])
 * with the quantization range drawn in red, so the clip ACIQ chose can be judged by eye.
 */
final class HistogramChart {
    private static final int PANEL_W = 320, PANEL_H = 200, COLUMNS = 3, BARS = 128;

    private HistogramChart() {}

    static void write(Path file, Calibration calibration, Map<String, QuantPlan.Activations.Affine> activations, String title) {
        int rows = (activations.size() + COLUMNS - 1) / COLUMNS;
        BufferedImage img = new BufferedImage(PANEL_W * COLUMNS, PANEL_H * rows + 30, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, img.getWidth(), img.getHeight());
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 14));
        g.drawString(title, 10, 20);
        int i = 0;
        for (Map.Entry<String, QuantPlan.Activations.Affine> a : activations.entrySet()) {
            panel(g, 30 + (i / COLUMNS) * PANEL_H, (i % COLUMNS) * PANEL_W, calibration.layer(a.getKey()), a.getKey(), a.getValue());
            i++;
        }
        g.dispose();
        try {
            AtomicFiles.write(file, tmp -> ImageIO.write(img, "png", tmp.toFile()));
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    private static void panel(Graphics2D g, int top, int left, ActivationStats s, String value, QuantPlan.Activations.Affine a) {
        int x0 = left + 10, y0 = top + 20, w = PANEL_W - 20, h = PANEL_H - 45;
        long[] hist = s.histogram();
        double[] bars = new double[BARS];
        for (int b = 0; b < hist.length; b++) bars[(int) ((long) b * BARS / hist.length)] += hist[b];
        double maxLog = 0;
        for (double v : bars) maxLog = Math.max(maxLog, Math.log1p(v));
        g.setColor(new Color(70, 110, 170));
        for (int b = 0; b < BARS; b++) {
            int bh = maxLog == 0 ? 0 : (int) Math.round(h * Math.log1p(bars[b]) / maxLog);
            g.fillRect(x0 + b * w / BARS, y0 + h - bh, Math.max(1, w / BARS), bh);
        }
        g.setColor(Color.GRAY);
        g.drawRect(x0, y0, w, h);
        g.setColor(Color.RED);
        g.setStroke(new BasicStroke(2));
        double span = s.max() - s.min();
        for (double edge : new double[] {a.lo(), a.hi()}) {
            if (span <= 0) break;
            int x = x0 + (int) Math.round(w * (edge - s.min()) / span);
            g.drawLine(x, y0, x, y0 + h);
        }
        g.setColor(Color.BLACK);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 11));
        g.drawString(String.format("%s  %d bits  range [%.3g, %.3g]", value, a.bits(), a.lo(), a.hi()), x0, top + 14);
        g.drawString(String.format("%.3g", s.min()), x0, y0 + h + 14);
        String max = String.format("%.3g", s.max());
        g.drawString(max, x0 + w - g.getFontMetrics().stringWidth(max), y0 + h + 14);
    }
}
