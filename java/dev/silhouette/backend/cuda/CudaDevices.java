package dev.silhouette.backend.cuda;

import jcuda.driver.CUdevice;
import jcuda.driver.CUdevice_attribute;
import jcuda.driver.JCudaDriver;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;

/** What `silhouette inspect --devices` reports: the GPUs, the driver, and which NVIDIA libraries were found. */
public final class CudaDevices {
    private CudaDevices() {}

    public record Device(int ordinal, String name, String computeCapability, long memoryBytes, int multiprocessors) {}

    public record Report(String status, String driverCudaVersion, List<Device> devices, String cudnn, String cublas) {}

    public static Report report() {
        Optional<String> reason = CudaAvailability.unavailableReason();
        String cudnn = Cudnn.unavailableReason().orElseGet(Cudnn::describe);
        String cublas = Cublas.unavailableReason().orElseGet(Cublas::describe);
        if (reason.isPresent()) return new Report("unavailable: " + reason.get(), null, List.of(), cudnn, cublas);
        int[] version = new int[1];
        Driver.check(JCudaDriver.cuDriverGetVersion(version), "cuDriverGetVersion");
        int[] count = new int[1];
        Driver.check(cuDeviceGetCount(count), "cuDeviceGetCount");
        List<Device> devices = new ArrayList<>();
        for (int i = 0; i < count[0]; i++) {
            CUdevice d = new CUdevice();
            Driver.check(cuDeviceGet(d, i), "cuDeviceGet(" + i + ")");
            byte[] name = new byte[256];
            Driver.check(cuDeviceGetName(name, name.length, d), "cuDeviceGetName");
            long[] mem = new long[1];
            Driver.check(cuDeviceTotalMem(mem, d), "cuDeviceTotalMem");
            devices.add(new Device(i, new String(name).trim().replace("\0", ""),
                    attribute(d, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR) + "." + attribute(d, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR),
                    mem[0], attribute(d, CUdevice_attribute.CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)));
        }
        return new Report("available", version[0] / 1000 + "." + version[0] % 1000 / 10, devices, cudnn, cublas);
    }

    private static int attribute(CUdevice d, int attribute) {
        int[] v = new int[1];
        Driver.check(cuDeviceGetAttribute(v, attribute, d), "cuDeviceGetAttribute(" + attribute + ")");
        return v[0];
    }
}
