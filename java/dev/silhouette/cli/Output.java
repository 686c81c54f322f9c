package dev.silhouette.cli;

import com.google.gson.GsonBuilder;

import java.io.PrintWriter;

/** Writes a command's result as text for people or, with --json, as one JSON document on stdout. */
final class Output {
    private Output() {}

    static void json(PrintWriter out, Object result) {
        out.println(new GsonBuilder().setPrettyPrinting().disableHtmlEscaping().serializeSpecialFloatingPointValues().create().toJson(result));
        out.flush();
    }
}
