package dev.silhouette.backend.cuda;

import jcuda.driver.CUdeviceptr;

/** A CUdeviceptr whose raw address can be read, for cuDNN/cuBLAS calls and kernel arguments. */
final class DevicePointer extends CUdeviceptr {
    long address() {
        return getNativePointer();
    }
}
