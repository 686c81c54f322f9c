package dev.silhouette.serve;

import org.testng.annotations.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertTrue;

/**
 * {@code silhouette serve} as a process: SIGTERM while requests are in flight loses none (each gets a
 * result or a 503, never a dropped connection) and the process exits.
 */
public class ServeProcessTest {
    @Test
    public void sigtermUnderLoadAnswersEveryRequestAndExits() throws Exception {
        Path repo = Files.createTempDirectory("serve-repo");
        Files.createDirectories(repo.resolve("fp"));
        Files.writeString(repo.resolve("fp").resolve(ModelRepository.CONFIG), "{\"source\": \"bundled\", \"backend\": \"cpu\", \"max_batch_size\": 8, \"queue_size\": 1000}");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), "dev.silhouette.cli.Main",
                "-q", "serve", "--repository", repo.toString(), "--http-port", "0", "--grpc-port", "-1", "--metrics-port", "-1", "--drain-seconds", "60")
                .redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
            int port = -1;
            List<String> lines = new ArrayList<>();
            for (String line; (line = out.readLine()) != null; ) {
                lines.add(line);
                Matcher m = Pattern.compile("listening: REST on (\\d+)").matcher(line);
                if (m.find()) port = Integer.parseInt(m.group(1));
                if (line.startsWith("ready: serving [fp]")) break;
            }
            assertTrue(port > 0, String.join("\n", lines));
            Thread.ofPlatform().daemon().start(() -> out.lines().forEach(l -> {}));
            HttpClient http = HttpClient.newHttpClient();
            String body = "{\"inputs\":[{\"name\":\"input\",\"datatype\":\"FP32\",\"shape\":[1,1,28,28],\"data\":" + Arrays.toString(new float[784]) + "}]}";
            HttpRequest request = HttpRequest.newBuilder(URI.create("http://localhost:" + port + "/v2/models/fp/infer")).POST(HttpRequest.BodyPublishers.ofString(body)).build();
            assertEquals(http.send(request, HttpResponse.BodyHandlers.ofString()).statusCode(), 200);
            List<CompletableFuture<HttpResponse<String>>> inFlight = new ArrayList<>();
            for (int i = 0; i < 64; i++) inFlight.add(http.sendAsync(request, HttpResponse.BodyHandlers.ofString()));
            p.destroy(); // SIGTERM
            int ok = 0;
            for (CompletableFuture<HttpResponse<String>> f : inFlight) {
                HttpResponse<String> r;
                try {
                    r = f.join();
                } catch (java.util.concurrent.CompletionException e) {
                    // Sent after the listener closed: refused at the door, never accepted.
                    assertTrue(e.getCause() instanceof java.net.ConnectException, String.valueOf(e.getCause()));
                    continue;
                }
                assertTrue(r.statusCode() == 200 || r.statusCode() == 503, r.statusCode() + " " + r.body());
                if (r.statusCode() == 200) ok++;
                else assertTrue(r.body().contains("shutting down"), r.body());
            }
            assertTrue(p.waitFor(60, TimeUnit.SECONDS), "serve did not exit after SIGTERM (" + ok + " of the in-flight requests had run)");
        } finally {
            p.destroyForcibly();
        }
    }
}
