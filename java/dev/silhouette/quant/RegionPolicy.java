package dev.silhouette.quant;

import dev.silhouette.io.Limit;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How many bits each silhouette region gets: regions listed from the lowest silhouette values to the
 * highest, each with its bit width and its share of every image's pixels in percent. Written
 * {@code 2:50,3:30,4:20} (or, as in the original research code, {@code 2bit 50%, 3bit 30%, 4bit 20%}):
 * the lowest 50% of an image's silhouette values at 2 bits, the next 30% at 3, the top 20% at 4.
 *
 * <p>Bits may not decrease from one region to the next: the method spends more bits where the
 * silhouette marks importance, and a policy written top-first ({@code 4:20,3:30,2:50}) would otherwise
 * silently do the opposite of what its author meant.
 */
public record RegionPolicy(List<Region> regions) {
    /** One region: its activation bit width and its share of the pixels in percent. */
    public record Region(int bits, int percent) {}

    private static final Pattern COMPACT = Pattern.compile("(\\d+):(\\d+)");
    private static final Pattern ORIGINAL = Pattern.compile("(\\d+)\\s*bits?\\s+(\\d+)\\s*%", Pattern.CASE_INSENSITIVE);

    public RegionPolicy {
        regions = List.copyOf(regions);
        String shown = describe(regions);
        if (regions.isEmpty()) throw new IllegalArgumentException("region policy '" + shown + "' has no regions");
        if (regions.size() > SilhouetteThresholds.MAX_REGIONS) {
            throw new IllegalArgumentException("region policy has " + regions.size() + " regions; at most " + SilhouetteThresholds.MAX_REGIONS);
        }
        int total = 0;
        for (int i = 0; i < regions.size(); i++) {
            Region r = regions.get(i);
            BitWidths.activation(r.bits(), "region policy '" + shown + "': region " + (i + 1));
            if (r.percent() < 1 || r.percent() > 100) {
                throw new IllegalArgumentException("region policy '" + shown + "': region " + (i + 1) + " has " + r.percent()
                        + "% of the pixels; each share must be 1 to 100%");
            }
            if (i > 0 && r.bits() < regions.get(i - 1).bits()) {
                throw new IllegalArgumentException("region policy '" + shown + "': bits go down from " + regions.get(i - 1).bits() + " to "
                        + r.bits() + "; regions are listed from the lowest silhouette values (fewest bits) to the highest");
            }
            total += r.percent();
        }
        if (total != 100) {
            throw new IllegalArgumentException("region policy '" + shown + "': shares sum to " + total + "%, not 100%");
        }
    }

    /** Parses {@code 2:50,3:30,4:20} or {@code 2bit 50%, 3bit 30%, 4bit 20%}. */
    public static RegionPolicy parse(String text) {
        if (text == null || text.isBlank()) throw new IllegalArgumentException("region policy is empty; write it as bits:percent,... e.g. 2:50,3:30,4:20");
        if (!Limit.POLICY_CHARS.allows(text.length())) {
            throw new IllegalArgumentException(Limit.POLICY_CHARS.refusal("region policy '" + text.substring(0, 40) + "...' has characters:", text.length()));
        }
        List<Region> regions = new ArrayList<>();
        for (String part : text.split(",")) {
            String p = part.strip();
            Matcher m = COMPACT.matcher(p);
            if (!m.matches()) m = ORIGINAL.matcher(p);
            if (!m.matches()) {
                throw new IllegalArgumentException("region policy '" + text.strip() + "': cannot read '" + p
                        + "'; write each region as bits:percent (2:50) or as 2bit 50%");
            }
            regions.add(new Region(parseSmall(m.group(1), text), parseSmall(m.group(2), text)));
        }
        return new RegionPolicy(regions);
    }

    private static int parseSmall(String digits, String text) {
        // Digits only by the pattern; anything longer than 3 digits is out of range for bits and percent alike.
        if (digits.length() > 3) throw new IllegalArgumentException("region policy '" + text.strip() + "': number " + digits + " is out of range");
        return Integer.parseInt(digits);
    }

    /** Region shares as integers, lowest silhouette values first. */
    public int[] percents() {
        return regions.stream().mapToInt(Region::percent).toArray();
    }

    /** Bits of region {@code index} (0 = lowest silhouette values). */
    public int bits(int index) {
        return regions.get(index).bits();
    }

    /** The nominal average activation bits: sum of bits times share (2.7 for 2:50,3:30,4:20). */
    public double averageBits() {
        double sum = 0;
        for (Region r : regions) sum += r.bits() * r.percent();
        return sum / 100;
    }

    /** The canonical spelling, which {@link #parse} reads back. */
    @Override
    public String toString() {
        return describe(regions);
    }

    private static String describe(List<Region> regions) {
        StringBuilder s = new StringBuilder();
        for (Region r : regions) s.append(s.isEmpty() ? "" : ",").append(r.bits()).append(':').append(r.percent());
        return s.toString();
    }
}
