package dev.silhouette;

import com.google.gson.JsonParser;
import dev.silhouette.api.Model;
import dev.silhouette.cli.Main;
import dev.silhouette.graph.ModelLoader;
import dev.silhouette.serve.AccessLog;
import dev.silhouette.serve.BatchConfig;
import dev.silhouette.serve.Metrics;
import dev.silhouette.serve.Server;
import org.testng.annotations.BeforeClass;
import org.testng.annotations.Test;
import org.yaml.snakeyaml.Yaml;
import picocli.CommandLine;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.testng.Assert.assertEquals;
import static org.testng.Assert.assertFalse;
import static org.testng.Assert.assertNotNull;
import static org.testng.Assert.assertNull;
import static org.testng.Assert.assertTrue;

/**
 * The Dockerfile and the manifests under deploy/ against the code, so that they cannot drift: ports, health
 * and metrics paths and the autoscaler's metric name against the server (its constants, and a running server
 * answering them), every container's arguments against the CLI's own parser, image name and user against the
 * Dockerfile and the server's name and version.
 */
public class DeployTest {
    static final Path ROOT = Path.of(System.getProperty("user.dir"));
    private final Map<String, Map<String, Object>> manifests = new LinkedHashMap<>();
    private Dockerfile docker;

    /** The runtime stage of a Dockerfile: its instructions by keyword (continuations joined, comments dropped), and the stages' bases. */
    record Dockerfile(List<String> bases, Map<String, List<String>> instructions) {
        static Dockerfile read(Path file) throws IOException {
            List<String> logical = new ArrayList<>();
            StringBuilder line = new StringBuilder();
            for (String raw : Files.readAllLines(file)) {
                String t = raw.strip();
                if (t.startsWith("#") || t.isEmpty() && line.isEmpty()) continue;
                if (t.endsWith("\\")) line.append(t, 0, t.length() - 1).append(' ');
                else {
                    logical.add(line.append(t).toString());
                    line.setLength(0);
                }
            }
            List<String> bases = new ArrayList<>();
            Map<String, List<String>> last = new LinkedHashMap<>();
            for (String l : logical) {
                String[] kv = l.split("\\s+", 2);
                String keyword = kv[0].toUpperCase(java.util.Locale.ROOT);
                if (keyword.equals("FROM")) {
                    bases.add(kv[1]);
                    last = new LinkedHashMap<>();
                }
                last.computeIfAbsent(keyword, k -> new ArrayList<>()).add(kv.length > 1 ? kv[1] : "");
            }
            return new Dockerfile(bases, last);
        }

        String one(String keyword) {
            List<String> v = instructions.get(keyword);
            assertNotNull(v, "the runtime stage has no " + keyword);
            assertEquals(v.size(), 1, keyword + " given more than once: " + v);
            return v.getFirst();
        }

        /** An exec-form (JSON array) instruction's words. */
        List<String> exec(String keyword) {
            String v = one(keyword);
            if (keyword.equals("HEALTHCHECK")) v = v.substring(v.indexOf("CMD ") + 4);
            List<String> words = new ArrayList<>();
            JsonParser.parseString(v).getAsJsonArray().forEach(e -> words.add(e.getAsString()));
            return words;
        }
    }

    @BeforeClass
    public void read() throws IOException {
        docker = Dockerfile.read(ROOT.resolve("Dockerfile"));
        try (Stream<Path> files = Files.walk(ROOT.resolve("deploy"))) {
            for (Path f : files.filter(p -> p.toString().endsWith(".yaml")).sorted().toList()) {
                for (Object doc : new Yaml().loadAll(Files.readString(f))) {
                    Map<String, Object> m = map(doc);
                    String kind = (String) m.get("kind");
                    assertNull(manifests.put(kind, m), "two manifests of kind " + kind);
                }
            }
        }
        assertEquals(manifests.keySet(), Set.of("Deployment", "Service", "ScaledObject", "ServingRuntime", "InferenceService"));
    }

    @SuppressWarnings("unchecked")
    static Map<String, Object> map(Object o) {
        assertTrue(o instanceof Map, "expected a mapping, found " + o);
        return (Map<String, Object>) o;
    }

    @SuppressWarnings("unchecked")
    static List<Object> list(Object o) {
        assertTrue(o instanceof List, "expected a list, found " + o);
        return (List<Object>) o;
    }

    /** A value by path of keys (and list indices). */
    static Object at(Object node, Object... path) {
        for (Object key : path) {
            assertNotNull(node, "no " + key);
            node = key instanceof Integer i ? list(node).get(i) : map(node).get(key);
        }
        return node;
    }

    private Map<String, Object> container(String kind) {
        Object spec = kind.equals("Deployment") ? at(manifests.get(kind), "spec", "template", "spec") : at(manifests.get(kind), "spec");
        List<Object> containers = list(map(spec).get("containers"));
        assertEquals(containers.size(), 1, kind + "'s containers");
        return map(containers.getFirst());
    }

    /** A container's arguments parsed by the CLI itself: picocli refuses any unknown option; the ports it would listen on. */
    record Serve(int http, int grpc, int metrics, int drainSeconds) {
        static Serve parse(List<String> args) {
            CommandLine.ParseResult parsed = Main.commandLine().parseArgs(args.toArray(String[]::new));
            assertTrue(parsed.hasSubcommand(), "no subcommand in " + args);
            CommandLine.ParseResult serve = parsed.subcommand();
            assertEquals(serve.commandSpec().name(), "serve");
            return new Serve(serve.matchedOptionValue("--http-port", Server.Options.HTTP_PORT), serve.matchedOptionValue("--grpc-port", Server.Options.GRPC_PORT),
                    serve.matchedOptionValue("--metrics-port", Server.Options.METRICS_PORT), serve.matchedOptionValue("--drain-seconds", 30));
        }
    }

    private static List<String> strings(Object o) {
        return list(o).stream().map(String::valueOf).toList();
    }

    private static int uid(String user) {
        return Integer.parseInt(user.split(":")[0]);
    }

    @Test
    public void theDockerfileServesOnTheServersPortsAsANonRootUser() {
        assertEquals(docker.bases().size(), 3, "maven, build and runtime stages: " + docker.bases());
        assertTrue(docker.bases().get(1).contains("cudnn-devel") && docker.bases().get(1).endsWith("AS build"), docker.bases().get(1));
        assertTrue(docker.bases().get(2).contains("cudnn-runtime"), docker.bases().get(2));
        Set<Integer> exposed = new LinkedHashSet<>();
        for (String p : docker.one("EXPOSE").split("\\s+")) exposed.add(Integer.parseInt(p));
        assertEquals(exposed, Set.of(Server.Options.HTTP_PORT, Server.Options.GRPC_PORT, Server.Options.METRICS_PORT));
        List<String> health = docker.exec("HEALTHCHECK");
        assertEquals(health.getLast(), "http://127.0.0.1:" + Server.Options.HTTP_PORT + Server.HEALTH_READY);
        assertTrue(uid(docker.one("USER")) > 0, "USER " + docker.one("USER"));
        assertEquals(docker.one("VOLUME"), "/out");
        // The entrypoint is the launcher, with the jar and its libraries where the launcher looks for them (ROOT/target).
        List<String> entrypoint = docker.exec("ENTRYPOINT");
        assertEquals(entrypoint.size(), 1);
        String launcher = entrypoint.getFirst(), root = launcher.substring(0, launcher.length() - "/bin/silhouette".length());
        assertTrue(launcher.endsWith("/bin/silhouette"), launcher);
        List<String> copied = docker.instructions().get("COPY").stream().map(c -> c.substring(c.lastIndexOf(' ') + 1)).toList();
        assertTrue(copied.containsAll(List.of(launcher, root + "/target/silhouette.jar", root + "/target/lib")), copied.toString());
        // The default command is the server, as the CLI parses it.
        assertEquals(Serve.parse(docker.exec("CMD")), new Serve(Server.Options.HTTP_PORT, Server.Options.GRPC_PORT, Server.Options.METRICS_PORT, 30));
    }

    @Test
    public void theDeploymentProbesAndPortsAreTheServers() {
        Map<String, Object> c = container("Deployment");
        assertEquals(c.get("image"), Server.NAME + ":" + Server.VERSION);
        assertNull(c.get("command"), "a command would replace the image's entrypoint");
        List<String> args = strings(c.get("args"));
        assertEquals(args.getFirst(), docker.exec("CMD").getFirst());
        Serve serve = Serve.parse(args);
        Map<String, Integer> ports = new LinkedHashMap<>();
        for (Object p : list(c.get("ports"))) ports.put((String) map(p).get("name"), (Integer) map(p).get("containerPort"));
        assertEquals(ports, Map.of("http", serve.http(), "grpc", serve.grpc(), "metrics", serve.metrics()));
        Set<Integer> exposed = new LinkedHashSet<>();
        for (String p : docker.one("EXPOSE").split("\\s+")) exposed.add(Integer.parseInt(p));
        assertEquals(new LinkedHashSet<>(ports.values()), exposed, "the Deployment's ports are the image's");
        for (String probe : List.of("startupProbe", "livenessProbe", "readinessProbe")) {
            assertEquals(ports.get((String) at(c, probe, "httpGet", "port")), serve.http(), probe + " port");
        }
        assertEquals(at(c, "readinessProbe", "httpGet", "path"), Server.HEALTH_READY);
        assertEquals(at(c, "livenessProbe", "httpGet", "path"), Server.HEALTH_LIVE);
        assertEquals(at(c, "startupProbe", "httpGet", "path"), Server.HEALTH_LIVE);
        assertTrue((Integer) at(c, "resources", "limits", "nvidia.com/gpu") >= 1, "a GPU limit");
        Map<String, Object> pod = map(at(manifests.get("Deployment"), "spec", "template"));
        assertTrue((Integer) at(pod, "spec", "terminationGracePeriodSeconds") > serve.drainSeconds(), "the kubelet waits longer than the drain");
        assertEquals(at(pod, "spec", "securityContext", "runAsUser"), uid(docker.one("USER")));
        assertEquals(at(pod, "spec", "securityContext", "runAsNonRoot"), true);
        assertEquals(at(pod, "metadata", "annotations", "prometheus.io/port"), Integer.toString(serve.metrics()));
        assertEquals(at(pod, "metadata", "annotations", "prometheus.io/path"), Metrics.PATH);
        assertEquals(at(manifests.get("Deployment"), "spec", "selector", "matchLabels"), at(pod, "metadata", "labels"));

        // The Service reaches those ports by name, on the same numbers, on the pods the Deployment labels.
        Map<String, Object> service = manifests.get("Service");
        assertEquals(at(service, "spec", "selector"), at(pod, "metadata", "labels"));
        for (Object p : list(at(service, "spec", "ports"))) {
            Map<String, Object> sp = map(p);
            assertEquals(sp.get("port"), ports.get((String) sp.get("targetPort")), "service port " + sp.get("name"));
        }
    }

    /** Metric names a PromQL query reads (identifiers followed by a selector or a closing bracket, not function calls). */
    static Set<String> metricNames(String query) {
        Set<String> names = new LinkedHashSet<>();
        Matcher m = Pattern.compile("([a-zA-Z_:][a-zA-Z0-9_:]*)\\s*(\\{|\\)|$)").matcher(query);
        while (m.find()) names.add(m.group(1));
        return names;
    }

    @Test
    public void theAutoscalerReadsThePendingRequestsGauge() {
        Map<String, Object> scaled = manifests.get("ScaledObject");
        assertEquals(at(scaled, "spec", "scaleTargetRef", "name"), at(manifests.get("Deployment"), "metadata", "name"));
        Map<String, Object> trigger = map(at(scaled, "spec", "triggers", 0));
        assertEquals(trigger.get("type"), "prometheus");
        String query = (String) at(trigger, "metadata", "query");
        assertEquals(metricNames(query), Set.of(Metrics.PENDING_REQUESTS), query);
        Map<String, Object> labels = map(at(manifests.get("Deployment"), "spec", "template", "metadata", "labels"));
        assertTrue(query.contains("app=\"" + labels.get("app") + "\""), "the query selects the Deployment's pods: " + query);
        int threshold = Integer.parseInt((String) at(trigger, "metadata", "threshold"));
        assertTrue(threshold > 0 && threshold < BatchConfig.DEFAULT.queueSize(), "threshold " + threshold + " under the queue size, or pods start only after refusals");
    }

    @Test
    public void theKServeRuntimeSpeaksV2OnItsDeclaredPort() {
        Map<String, Object> runtime = manifests.get("ServingRuntime"), isvc = manifests.get("InferenceService");
        assertTrue(strings(at(runtime, "spec", "protocolVersions")).contains("v2"));
        Map<String, Object> c = container("ServingRuntime");
        assertEquals(c.get("image"), Server.NAME + ":" + Server.VERSION);
        Serve serve = Serve.parse(strings(c.get("args")));
        assertEquals(at(c, "ports", 0, "containerPort"), serve.http(), "KServe routes to the first declared port");
        assertEquals(at(c, "readinessProbe", "httpGet", "path"), Server.HEALTH_READY);
        assertEquals(at(c, "readinessProbe", "httpGet", "port"), serve.http());
        assertEquals(at(c, "securityContext", "runAsUser"), uid(docker.one("USER")));
        assertTrue(strings(c.get("args")).containsAll(List.of("--repository", "/mnt/models")), "KServe's storage initializer fills /mnt/models");
        assertEquals(at(runtime, "metadata", "annotations", "prometheus.kserve.io/port"), Integer.toString(serve.metrics()));
        assertEquals(at(runtime, "metadata", "annotations", "prometheus.kserve.io/path"), Metrics.PATH);

        Map<String, Object> model = map(at(isvc, "spec", "predictor", "model"));
        assertEquals(model.get("protocolVersion"), "v2");
        assertEquals(model.get("runtime"), at(runtime, "metadata", "name"));
        assertEquals(at(model, "modelFormat", "name"), at(runtime, "spec", "supportedModelFormats", 0, "name"));
        assertTrue((Integer) at(model, "resources", "limits", "nvidia.com/gpu") >= 1, "a GPU limit");
    }

    /** Every path a probe, the HEALTHCHECK or a scrape names, asked of a running server: as the cluster would, before and after the models load. */
    @Test
    public void aRunningServerAnswersThePathsTheManifestsName() throws Exception {
        Set<String> ready = new LinkedHashSet<>(), live = new LinkedHashSet<>();
        ready.add(URI.create(docker.exec("HEALTHCHECK").getLast()).getPath());
        for (String kind : List.of("Deployment", "ServingRuntime")) {
            Map<String, Object> c = container(kind);
            for (String probe : List.of("startupProbe", "livenessProbe", "readinessProbe")) {
                if (c.containsKey(probe)) (probe.equals("readinessProbe") ? ready : live).add((String) at(c, probe, "httpGet", "path"));
            }
        }
        String scrape = (String) at(manifests.get("Deployment"), "spec", "template", "metadata", "annotations", "prometheus.io/path");
        HttpClient http = HttpClient.newHttpClient();
        try (Server server = Server.open(new Server.Options(0, -1, 0, Server.Options.BODY_LIMIT), AccessLog.OFF)) {
            String base = "http://127.0.0.1:" + server.httpPort();
            for (String p : live) assertEquals(get(http, base + p).statusCode(), 200, p + " while loading");
            for (String p : ready) assertEquals(get(http, base + p).statusCode(), 503, p + " while loading");
            server.load(List.of(new Server.ModelSpec("fmnist", Model.load(ModelLoader.BUNDLED), "cpu", 0, BatchConfig.DEFAULT)));
            for (String p : ready) assertEquals(get(http, base + p).statusCode(), 200, p + " once loaded");
            HttpResponse<String> metrics = get(http, "http://127.0.0.1:" + server.metricsPort() + scrape);
            assertEquals(metrics.statusCode(), 200);
            String query = (String) at(manifests.get("ScaledObject"), "spec", "triggers", 0, "metadata", "query");
            for (String name : metricNames(query)) {
                assertTrue(metrics.body().contains("# TYPE " + name + " gauge\n"), name + " is not a gauge the server exports");
                assertTrue(metrics.body().contains(name + "{model=\"fmnist\"} 0\n"), metrics.body());
            }
            assertFalse(ready.isEmpty() || live.isEmpty());
        }
    }

    private static HttpResponse<String> get(HttpClient http, String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).GET().build(), HttpResponse.BodyHandlers.ofString());
    }
}
