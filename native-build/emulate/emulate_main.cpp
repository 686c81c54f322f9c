// The replay tool: one emulated launch in its own process, for the build with AddressSanitizer and
// UndefinedBehaviorSanitizer (a sanitizer runtime cannot be loaded into the JVM that runs the tests).
// HostEmulator (tests) writes the launch and every buffer its pointer arguments point into; this tool
// allocates each buffer at its exact size (so a read one byte past its end is a heap-buffer-overflow),
// runs the launch, and writes the return code, the error text and every buffer back.
//   emulate_main REQUEST RESPONSE
// Request, little-endian: "SEMU", u32 name length, name, i32 grid x, grid y, block x, u64 block-order
// seed, i32 ascending, i32 poison, u32 buffer count, per buffer u64 size and its bytes, u32 argument
// count, per argument u8 kind (0: the value u64; 1: u32 buffer index and u64 offset into it).
// Response: i32 return code, u32 error length, error text, then every buffer's bytes in request order.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" int emu_launch(const char* kernel, int grid_x, int grid_y, int block_x, const uint64_t* args, int count);
extern "C" void emu_configure(uint64_t block_order_seed, int ascending, int poison_shared);
extern "C" const char* emu_last_error();

namespace {

struct Reader {
    FILE* f;
    template <typename T>
    T get() {
        T v;
        if (std::fread(&v, sizeof v, 1, f) != 1) fail("request ends early");
        return v;
    }
    void bytes(void* to, size_t n) {
        if (n > 0 && std::fread(to, 1, n, f) != n) fail("request ends early");
    }
    [[noreturn]] static void fail(const char* why) {
        std::fprintf(stderr, "emulate_main: %s\n", why);
        std::exit(2);
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: emulate_main REQUEST RESPONSE\n");
        return 2;
    }
    FILE* in = std::fopen(argv[1], "rb");
    if (in == nullptr) Reader::fail("cannot open the request");
    Reader r{in};
    char magic[4];
    r.bytes(magic, 4);
    if (std::memcmp(magic, "SEMU", 4) != 0) Reader::fail("not a launch request");
    std::string name(r.get<uint32_t>(), '\0');
    r.bytes(name.data(), name.size());
    const int gx = r.get<int32_t>(), gy = r.get<int32_t>(), bx = r.get<int32_t>();
    const uint64_t seed = r.get<uint64_t>();
    const int ascending = r.get<int32_t>(), poison = r.get<int32_t>();
    std::vector<unsigned char*> buffers(r.get<uint32_t>());
    std::vector<uint64_t> sizes(buffers.size());
    for (size_t i = 0; i < buffers.size(); i++) {
        sizes[i] = r.get<uint64_t>();
        buffers[i] = static_cast<unsigned char*>(std::malloc(sizes[i] == 0 ? 1 : sizes[i]));  // exact size: ASan's redzone starts at the end
        r.bytes(buffers[i], sizes[i]);
    }
    std::vector<uint64_t> args(r.get<uint32_t>());
    for (auto& a : args) {
        if (r.get<uint8_t>() == 0) {
            a = r.get<uint64_t>();
        } else {
            const uint32_t b = r.get<uint32_t>();
            const uint64_t offset = r.get<uint64_t>();
            if (b >= buffers.size() || offset > sizes[b]) Reader::fail("argument points outside its buffer");
            a = reinterpret_cast<uint64_t>(buffers[b] + offset);
        }
    }
    std::fclose(in);
    emu_configure(seed, ascending, poison);
    const int rc = emu_launch(name.c_str(), gx, gy, bx, args.data(), (int)args.size());
    const std::string error = emu_last_error();
    FILE* out = std::fopen(argv[2], "wb");
    if (out == nullptr) Reader::fail("cannot write the response");
    const uint32_t length = (uint32_t)error.size();
    std::fwrite(&rc, sizeof rc, 1, out);
    std::fwrite(&length, sizeof length, 1, out);
    std::fwrite(error.data(), 1, error.size(), out);
    for (size_t i = 0; i < buffers.size(); i++) {
        std::fwrite(buffers[i], 1, sizes[i], out);
        std::free(buffers[i]);
    }
    return std::fclose(out) == 0 ? 0 : 2;
}
