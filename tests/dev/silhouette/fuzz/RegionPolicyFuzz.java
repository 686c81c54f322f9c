package dev.silhouette.fuzz;

import dev.silhouette.quant.RegionPolicy;

import java.nio.charset.StandardCharsets;

/** Region policy strings (2:50,3:30,4:20 or 2bit 50%, ...); what parses must read back from its own spelling. */
public final class RegionPolicyFuzz {
    private RegionPolicyFuzz() {}

    public static void fuzzerInitialize() {
        Findings.warmUp(RegionPolicyFuzz::fuzzerTestOneInput, "RegionPolicyFuzz");
    }

    public static void fuzzerTestOneInput(byte[] data) {
        String text = new String(data, StandardCharsets.UTF_8);
        RegionPolicy policy;
        try {
            policy = RegionPolicy.parse(text);
        } catch (RuntimeException e) {
            Findings.refusal(e, "region policy");
            return;
        }
        if (!RegionPolicy.parse(policy.toString()).equals(policy)) throw new AssertionError("'" + text + "' does not read back from " + policy);
    }
}
