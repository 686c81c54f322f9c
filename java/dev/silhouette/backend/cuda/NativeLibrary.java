package dev.silhouette.backend.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * One NVIDIA shared library (cuDNN, cuBLAS) opened at run time in whichever supported major version is
 * installed, bound through the foreign function API. The JCudnn/JCublas jars pin one major version each,
 * while servers carry cuDNN 9 and CUDA 12 or 13; asking the dynamic loader for versioned file names
 * instead lets one build run on all of them.
 *
 * <p>Search order: every folder named by {@value #FOLDERS_PROPERTY} (or, when that property is unset,
 * the environment variable {@value #FOLDERS_ENV}; several folders are separated by ':'), each tried with
 * every candidate name; then the system loader by soname, which honours LD_LIBRARY_PATH and the
 * ldconfig cache. Within a folder and within the system search the newest major version is tried first.
 *
 * <p>Libraries are opened in the global arena and never unloaded: cuDNN and cuBLAS keep process-wide
 * state (device code modules, worker threads) that does not survive an unload.
 */
public final class NativeLibrary {
    public static final String FOLDERS_PROPERTY = "silhouette.cuda.libs";
    public static final String FOLDERS_ENV = "SILHOUETTE_CUDA_LIBS";

    static final Candidates CUDNN = new Candidates("cuDNN", List.of("libcudnn.so.9", "libcudnn.so.8"), "cudnnGetVersion");
    static final Candidates CUBLAS = new Candidates("cuBLAS", List.of("libcublas.so.13", "libcublas.so.12"), "cublasCreate_v2");

    private static final Linker LINKER = Linker.nativeLinker();
    /** dlopen flag: resolve every symbol now, so a broken install fails here and not in a later call. */
    private static final int RTLD_NOW = 2;

    /**
     * What to look for.
     *
     * @param library     the name people know it by, for messages
     * @param sonames     file names of the supported major versions, preferred first; each ends in ".N"
     * @param probeSymbol a function every supported version exports, used to find which file the system
     *                    loader picked
     */
    public record Candidates(String library, List<String> sonames, String probeSymbol) {
        public Candidates {
            sonames = List.copyOf(sonames);
            for (String name : sonames) majorVersionOf(name);
        }
    }

    /** Opens a library by soname through the system loader; throws IllegalArgumentException when it cannot. */
    @FunctionalInterface
    interface SystemLoader {
        SymbolLookup open(String soname, Arena arena);
    }

    /**
     * Where to look.
     *
     * @param folders      searched first, in order
     * @param foldersOrigin where the folders came from, for messages
     * @param system       the system loader, or null to skip it
     */
    record Search(List<Path> folders, String foldersOrigin, SystemLoader system) {
        Search {
            folders = List.copyOf(folders);
        }

        /** The folders configured by property or environment, then the real system loader. */
        static Search fromEnvironment() {
            String property = System.getProperty(FOLDERS_PROPERTY);
            if (property != null && !property.isBlank()) return new Search(parseFolders(property), "-D" + FOLDERS_PROPERTY, SymbolLookup::libraryLookup);
            String env = System.getenv(FOLDERS_ENV);
            if (env != null && !env.isBlank()) return new Search(parseFolders(env), FOLDERS_ENV, SymbolLookup::libraryLookup);
            return new Search(List.of(), null, SymbolLookup::libraryLookup);
        }
    }

    private final Candidates candidates;
    private final String soname;
    private final Path path;
    private final SymbolLookup symbols;

    private NativeLibrary(Candidates candidates, String soname, Path path, SymbolLookup symbols) {
        this.candidates = candidates;
        this.soname = soname;
        this.path = path;
        this.symbols = symbols;
    }

    /** Loads the library from the configured folders or the system, or throws a CudaException listing every try. */
    static NativeLibrary load(Candidates candidates) {
        return load(candidates, Search.fromEnvironment());
    }

    static NativeLibrary load(Candidates candidates, Search search) {
        List<String> folderTries = new ArrayList<>();
        for (Path folder : search.folders()) {
            if (!Files.isDirectory(folder)) {
                folderTries.add(folder + " (no such folder)");
                continue;
            }
            for (String name : candidates.sonames()) {
                Path file = folder.resolve(name).toAbsolutePath();
                if (!Files.exists(file)) {
                    folderTries.add(file + " (absent)");
                    continue;
                }
                try {
                    return new NativeLibrary(candidates, name, file, SymbolLookup.libraryLookup(file, Arena.global()));
                } catch (IllegalArgumentException e) {
                    folderTries.add(file + " (" + loaderError(file.toString()) + ")");
                }
            }
        }
        List<String> systemTries = new ArrayList<>();
        if (search.system() != null) {
            for (String name : candidates.sonames()) {
                try {
                    SymbolLookup lookup = search.system().open(name, Arena.global());
                    return new NativeLibrary(candidates, name, fileDefining(lookup, candidates.probeSymbol()), lookup);
                } catch (IllegalArgumentException e) {
                    systemTries.add(name + " (" + loaderError(name) + ")");
                }
            }
        }
        throw new CudaException(notFoundMessage(candidates, search, folderTries, systemTries));
    }

    private static String notFoundMessage(Candidates candidates, Search search, List<String> folderTries, List<String> systemTries) {
        StringBuilder m = new StringBuilder("no ").append(candidates.library()).append(" library could be loaded; tried ");
        if (search.folders().isEmpty()) {
            m.append("no folder (neither -D").append(FOLDERS_PROPERTY).append(" nor ").append(FOLDERS_ENV).append(" is set)");
        } else {
            m.append(String.join(", ", folderTries)).append(" [folders from ").append(search.foldersOrigin()).append(']');
        }
        if (search.system() != null) {
            m.append(", then by soname ").append(String.join(", ", systemTries)).append(" [system loader: LD_LIBRARY_PATH, ldconfig cache]");
        }
        String newest = candidates.sonames().getFirst();
        m.append(". Install ").append(candidates.library()).append(' ')
                .append(String.join(" or ", candidates.sonames().stream().map(n -> String.valueOf(majorVersionOf(n))).toList()))
                .append(", or name the folder holding ").append(newest).append(" in -D").append(FOLDERS_PROPERTY)
                .append(" or ").append(FOLDERS_ENV).append(" (':' separates folders) or LD_LIBRARY_PATH");
        return m.toString();
    }

    static List<Path> parseFolders(String value) {
        List<Path> folders = new ArrayList<>();
        for (String part : value.split(":")) {
            if (!part.isBlank()) folders.add(Path.of(part.strip()));
        }
        return folders;
    }

    static int majorVersionOf(String soname) {
        int dot = soname.lastIndexOf('.');
        try {
            return Integer.parseInt(soname.substring(dot + 1));
        } catch (NumberFormatException | IndexOutOfBoundsException e) {
            throw new IllegalArgumentException("candidate " + soname + " does not end in a major version (.N)");
        }
    }

    /**
     * Why the dynamic loader refused a name. SymbolLookup's exception only says "cannot open", and the
     * loader's own message is gone by then, so this asks dlopen once more and reads dlerror.
     */
    private static String loaderError(String nameOrPath) {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup libc = LINKER.defaultLookup();
            Optional<MemorySegment> dlopen = libc.find("dlopen"), dlerror = libc.find("dlerror"), dlclose = libc.find("dlclose");
            if (dlopen.isEmpty() || dlerror.isEmpty() || dlclose.isEmpty()) return "cannot be opened";
            MethodHandle open = LINKER.downcallHandle(dlopen.get(), FunctionDescriptor.of(ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.JAVA_INT));
            MethodHandle error = LINKER.downcallHandle(dlerror.get(), FunctionDescriptor.of(ValueLayout.ADDRESS));
            MemorySegment handle = (MemorySegment) open.invokeExact(arena.allocateFrom(nameOrPath), RTLD_NOW);
            if (!handle.equals(MemorySegment.NULL)) {
                MethodHandle close = LINKER.downcallHandle(dlclose.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
                int ignored = (int) close.invokeExact(handle);
                return "cannot be opened";
            }
            return cString((MemorySegment) error.invokeExact()).orElse("cannot be opened");
        } catch (Throwable t) {
            return "cannot be opened";
        }
    }

    /** The file the dynamic loader mapped for {@code symbol}, through dladdr; null where that is unknown. */
    private static Path fileDefining(SymbolLookup lookup, String symbol) {
        Optional<MemorySegment> address = lookup.find(symbol);
        Optional<MemorySegment> dladdr = LINKER.defaultLookup().find("dladdr");
        if (address.isEmpty() || dladdr.isEmpty()) return null;
        // Dl_info: dli_fname, dli_fbase, dli_sname, dli_saddr, four pointers.
        MemoryLayout dlInfo = MemoryLayout.sequenceLayout(4, ValueLayout.ADDRESS);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment info = arena.allocate(dlInfo);
            MethodHandle call = LINKER.downcallHandle(dladdr.get(), FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
            int found = (int) call.invokeExact(address.get(), info);
            if (found == 0) return null;
            return cString(info.get(ValueLayout.ADDRESS, 0)).map(Path::of).orElse(null);
        } catch (Throwable t) {
            return null;
        }
    }

    /** A NUL-terminated string owned by the library (never freed here). */
    static Optional<String> cString(MemorySegment pointer) {
        if (pointer == null || pointer.equals(MemorySegment.NULL)) return Optional.empty();
        return Optional.of(pointer.reinterpret(Long.MAX_VALUE).getString(0));
    }

    /** The file name that was loaded, such as libcudnn.so.9. */
    public String soname() {
        return soname;
    }

    /** The file that was loaded, where known. */
    public Optional<Path> path() {
        return Optional.ofNullable(path);
    }

    public int majorVersion() {
        return majorVersionOf(soname);
    }

    /** For messages: "libcudnn.so.9 from /usr/lib/x86_64-linux-gnu/libcudnn.so.9". */
    public String describe() {
        return soname + (path == null ? " (path unknown)" : " from " + path);
    }

    /** A downcall handle for {@code symbol}; a CudaException naming the symbol and the file when it is missing. */
    MethodHandle function(String symbol, FunctionDescriptor descriptor) {
        return optionalFunction(symbol, descriptor).orElseThrow(() -> new CudaException(
                candidates.library() + " library " + describe() + " does not export " + symbol
                        + ": a version Silhouette does not support, or a damaged install"));
    }

    /** A downcall handle for a symbol that only some supported versions export. */
    Optional<MethodHandle> optionalFunction(String symbol, FunctionDescriptor descriptor) {
        return symbols.find(symbol).map(address -> LINKER.downcallHandle(address, descriptor));
    }
}
