package dev.silhouette.cli;

import dev.silhouette.backend.cpu.Workers;
import dev.silhouette.io.Progress;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The `silhouette` command line. */
@Command(name = "silhouette", mixinStandardHelpOptions = true, version = "silhouette 0.1.0",
        description = "Region-based low-bit CNN inference driven by a global silhouette.",
        subcommands = {RunCommand.class, InspectCommand.class, BenchCommand.class, InferCommand.class, ExportCommand.class,
                QuantCommands.Calibrate.class, QuantCommands.Quantize.class, QuantCommands.Eval.class, TrainCommand.class, FinetuneCommand.class, DataCommand.class,
                ServeCommand.class, LoadtestCommand.class, ConformanceCommand.class,
                CommandLine.HelpCommand.class})
public final class Main {

    /** Every command takes it, before or after the command's name; the display on stderr otherwise fits a terminal or a log. */
    @Option(names = {"-q", "--quiet"}, defaultValue = "false", scope = ScopeType.INHERIT, description = "no progress bars or progress lines on stderr")
    void quiet(boolean quiet) {
        Progress.setQuiet(quiet);
    }

    /** Compute threads of the CPU backend (its worker pool), for every command; SILHOUETTE_THREADS sets it too. */
    @Option(names = "--threads", scope = ScopeType.INHERIT, paramLabel = "N",
            description = "CPU compute threads, 1 to 1024 (default: SILHOUETTE_THREADS, else one per available core)")
    void threads(Integer threads) {
        if (threads != null) Workers.setThreads(threads);
    }

    public static void main(String[] args) {
        // Library notices (an unavailable backend, a missing cuDNN) as one plain line each on stderr.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "silhouette: %5$s%6$s%n");
        }
        System.exit(commandLine().execute(args));
    }

    /** The configured command line; bad input becomes one message on stderr and exit code 2, not a stack trace. */
    public static CommandLine commandLine() {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((e, cmd, parsed) -> {
            if (e instanceof IllegalArgumentException || e instanceof IllegalStateException || e instanceof java.io.UncheckedIOException) {
                cmd.getErr().println("silhouette: " + e.getMessage());
                return 2;
            }
            throw e;
        });
        return cl;
    }
}
