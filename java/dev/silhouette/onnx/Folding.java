package dev.silhouette.onnx;

import dev.silhouette.graph.Op;

import java.util.Arrays;
import java.util.List;

/** Import-time evaluation of the ops that compute on constants (shape arithmetic, folded weights). */
final class Folding {
    private Folding() {}

    /** ONNX Gather: out dims = data[:axis] + indices + data[axis+1:]; negative indices count from the end. */
    static Constant gather(Constant data, Constant indices, long axisAttr) {
        int rank = data.rank();
        if (rank == 0) throw new OnnxException("Gather from a scalar");
        int axis = (int) (axisAttr < 0 ? axisAttr + rank : axisAttr);
        if (axis < 0 || axis >= rank) throw new OnnxException("Gather axis " + axisAttr + " outside rank " + rank);
        long[] idx = indices.longs("Gather indices");
        long[] dd = data.dims();
        int axisSize = (int) dd[axis];
        long[] outDims = new long[rank - 1 + indices.rank()];
        System.arraycopy(dd, 0, outDims, 0, axis);
        System.arraycopy(indices.dims(), 0, outDims, axis, indices.rank());
        System.arraycopy(dd, axis + 1, outDims, axis + indices.rank(), rank - axis - 1);
        int outer = (int) product(dd, 0, axis), inner = (int) product(dd, axis + 1, rank);
        int n = (int) Constant.size(outDims);
        float[] f = data.isFloat() ? new float[n] : null;
        long[] l = data.isFloat() ? null : new long[n];
        int pos = 0;
        for (int o = 0; o < outer; o++) {
            for (long index : idx) {
                long i = index < 0 ? index + axisSize : index;
                if (i < 0 || i >= axisSize) throw new OnnxException("Gather index " + index + " outside axis of size " + axisSize);
                for (int k = 0; k < inner; k++) {
                    int src = (int) ((o * (long) axisSize + i) * inner + k);
                    if (f != null) f[pos++] = data.floats()[src];
                    else l[pos++] = data.ints()[src];
                }
            }
        }
        return new Constant(outDims, f, l);
    }

    static long[] unsqueeze(long[] dims, long[] axes) {
        int rank = dims.length + axes.length;
        boolean[] inserted = new boolean[rank];
        for (long a : axes) {
            long ax = a < 0 ? a + rank : a;
            if (ax < 0 || ax >= rank || inserted[(int) ax]) throw new OnnxException("Unsqueeze axes " + Arrays.toString(axes) + " invalid for rank " + dims.length);
            inserted[(int) ax] = true;
        }
        long[] out = new long[rank];
        for (int i = 0, j = 0; i < rank; i++) out[i] = inserted[i] ? 1 : dims[j++];
        return out;
    }

    /** Without axes, every axis of size 1 goes. */
    static long[] squeeze(long[] dims, long[] axes) {
        boolean[] drop = new boolean[dims.length];
        if (axes == null) {
            for (int i = 0; i < dims.length; i++) drop[i] = dims[i] == 1;
        } else {
            for (long a : axes) {
                long ax = a < 0 ? a + dims.length : a;
                if (ax < 0 || ax >= dims.length || dims[(int) ax] != 1) {
                    throw new OnnxException("Squeeze axis " + a + " is not an axis of size 1 of " + Arrays.toString(dims));
                }
                drop[(int) ax] = true;
            }
        }
        return java.util.stream.IntStream.range(0, dims.length).filter(i -> !drop[i]).mapToLong(i -> dims[i]).toArray();
    }

    /** ONNX Reshape's target: 0 copies the input's dim (unless allowzero), one -1 takes the rest. */
    static long[] reshapeTarget(long[] in, long[] target, boolean allowZero) {
        long[] out = target.clone();
        int inferred = -1;
        long known = 1;
        for (int i = 0; i < out.length; i++) {
            if (out[i] == 0 && !allowZero) {
                if (i >= in.length) throw new OnnxException("Reshape target " + Arrays.toString(target) + " copies axis " + i + " that input " + Arrays.toString(in) + " lacks");
                out[i] = in[i];
            }
            if (out[i] == -1) {
                if (inferred >= 0) throw new OnnxException("Reshape target " + Arrays.toString(target) + " has more than one -1");
                inferred = i;
            } else if (out[i] < 0) {
                throw new OnnxException("Reshape target " + Arrays.toString(target) + " has negative size " + out[i]);
            } else {
                known = Math.multiplyExact(known, out[i]);
            }
        }
        long size = Constant.size(in);
        if (inferred >= 0) {
            if (known == 0 || size % known != 0) throw new OnnxException("Reshape cannot infer -1: " + Arrays.toString(in) + " to " + Arrays.toString(target));
            out[inferred] = size / known;
        } else if (known != size) {
            throw new OnnxException("Reshape of " + Arrays.toString(in) + " (" + size + " elements) to " + Arrays.toString(target) + " (" + known + ")");
        }
        return out;
    }

    static Constant concat(List<Constant> parts, int axis) {
        Constant first = parts.getFirst();
        boolean floats = parts.stream().anyMatch(Constant::isFloat);
        long[] dims = first.dims().clone();
        long total = 0;
        for (Constant p : parts) {
            if (p.rank() != first.rank()) throw new OnnxException("Concat of ranks " + first.rank() + " and " + p.rank());
            for (int d = 0; d < dims.length; d++) {
                if (d != axis && p.dims()[d] != dims[d]) throw new OnnxException("Concat of " + Arrays.toString(first.dims()) + " and " + Arrays.toString(p.dims()));
            }
            total += p.dims()[axis];
        }
        dims[axis] = total;
        int n = (int) Constant.size(dims);
        int outer = (int) product(dims, 0, axis);
        float[] f = floats ? new float[n] : null;
        long[] l = floats ? null : new long[n];
        int pos = 0;
        for (int o = 0; o < outer; o++) {
            for (Constant p : parts) {
                int chunk = p.size() / Math.max(1, outer);
                Constant src = floats ? p.asFloats() : p;
                for (int k = 0; k < chunk; k++) {
                    if (floats) f[pos++] = src.floats()[o * chunk + k];
                    else l[pos++] = src.ints()[o * chunk + k];
                }
            }
        }
        return new Constant(dims, f, l);
    }

    /** Broadcast arithmetic; integers stay integers (division truncates, as ONNX Runtime's int Div). */
    static Constant arithmetic(Constant a, Constant b, Op.Arithmetic kind) {
        int rank = Math.max(a.rank(), b.rank());
        long[] dims = new long[rank];
        for (int i = 0; i < rank; i++) {
            long da = i < rank - a.rank() ? 1 : a.dims()[i - (rank - a.rank())];
            long db = i < rank - b.rank() ? 1 : b.dims()[i - (rank - b.rank())];
            if (da != db && da != 1 && db != 1) throw new OnnxException("cannot broadcast " + Arrays.toString(a.dims()) + " with " + Arrays.toString(b.dims()));
            dims[i] = da == 1 ? db : da;
        }
        int n = (int) Constant.size(dims);
        boolean ints = !a.isFloat() && !b.isFloat();
        float[] f = ints ? null : new float[n];
        long[] l = ints ? new long[n] : null;
        Constant fa = ints ? a : a.asFloats(), fb = ints ? b : b.asFloats();
        for (int i = 0; i < n; i++) {
            int ia = index(i, dims, a.dims()), ib = index(i, dims, b.dims());
            if (ints) {
                long x = fa.ints()[ia], y = fb.ints()[ib];
                l[i] = switch (kind) {
                    case ADD -> x + y;
                    case SUB -> x - y;
                    case MUL -> x * y;
                    case DIV -> {
                        if (y == 0) throw new OnnxException("integer division by zero in a constant computation");
                        yield x / y;
                    }
                };
            } else {
                f[i] = kind.apply(fa.floats()[ia], fb.floats()[ib]);
            }
        }
        return new Constant(dims, f, l);
    }

    /** Position in a broadcast operand of the element at flat index i of the output. */
    private static int index(int flat, long[] outDims, long[] dims) {
        int pos = 0, stride = 1;
        for (int d = outDims.length - 1, k = dims.length - 1; d >= 0; d--, k--) {
            int i = (int) (flat % outDims[d]);
            flat /= (int) outDims[d];
            if (k >= 0) {
                if (dims[k] != 1) pos += i * stride;
                stride *= (int) dims[k];
            }
        }
        return pos;
    }

    static long product(long[] dims, int from, int to) {
        long p = 1;
        for (int i = from; i < to; i++) p *= dims[i];
        return p;
    }

    /** ONNX Transpose of a constant: output axis i is input axis perm[i] (default: reversed). */
    static Constant transpose(Constant c, long[] perm) {
        int rank = c.rank();
        if (perm == null) {
            perm = new long[rank];
            for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        }
        boolean[] seen = new boolean[rank];
        if (perm.length != rank) throw new OnnxException("Transpose perm " + Arrays.toString(perm) + " does not fit rank " + rank);
        for (long p : perm) {
            if (p < 0 || p >= rank || seen[(int) p]) throw new OnnxException("Transpose perm " + Arrays.toString(perm) + " is not a permutation of 0.." + (rank - 1));
            seen[(int) p] = true;
        }
        long[] in = c.dims(), out = new long[rank];
        for (int i = 0; i < rank; i++) out[i] = in[(int) perm[i]];
        long[] inStrides = new long[rank];
        for (int d = rank - 1, st = 1; d >= 0; d--) {
            inStrides[d] = st;
            st *= (int) in[d];
        }
        int n = c.size();
        float[] f = c.isFloat() ? new float[n] : null;
        long[] l = c.isFloat() ? null : new long[n];
        for (int i = 0; i < n; i++) {
            long src = 0;
            int rest = i;
            for (int d = rank - 1; d >= 0; d--) {
                int idx = (int) (rest % out[d]);
                rest /= (int) out[d];
                src += idx * inStrides[(int) perm[d]];
            }
            if (f != null) f[i] = c.floats()[(int) src];
            else l[i] = c.ints()[(int) src];
        }
        return new Constant(out, f, l);
    }

    /**
     * ONNX Slice of a constant: per listed axis, start and end clamped as the spec says (negative values
     * count from the end), any non-zero step.
     */
    static Constant slice(Constant c, long[] starts, long[] ends, long[] axes, long[] steps) {
        int rank = c.rank();
        if (starts.length != ends.length || (axes != null && axes.length != starts.length) || (steps != null && steps.length != starts.length)) {
            throw new OnnxException("Slice starts, ends, axes and steps differ in length");
        }
        long[] dims = c.dims();
        // Per axis: the selected source indices.
        int[][] picks = new int[rank][];
        for (int d = 0; d < rank; d++) {
            picks[d] = new int[(int) dims[d]];
            for (int i = 0; i < dims[d]; i++) picks[d][i] = i;
        }
        boolean[] done = new boolean[rank];
        for (int k = 0; k < starts.length; k++) {
            long axis = axes == null ? k : axes[k];
            if (axis < 0) axis += rank;
            if (axis < 0 || axis >= rank || done[(int) axis]) throw new OnnxException("Slice axis " + (axes == null ? k : axes[k]) + " is invalid or repeated for rank " + rank);
            done[(int) axis] = true;
            long size = dims[(int) axis], step = steps == null ? 1 : steps[k];
            if (step == 0) throw new OnnxException("Slice step 0");
            long start = starts[k] < 0 ? starts[k] + size : starts[k], end = ends[k] < 0 ? ends[k] + size : ends[k];
            if (step > 0) {
                start = Math.max(0, Math.min(size, start));
                end = Math.max(0, Math.min(size, end));
            } else {
                start = Math.max(-1, Math.min(size - 1, start));
                end = Math.max(-1, Math.min(size - 1, end));
            }
            List<Integer> chosen = new java.util.ArrayList<>();
            for (long i = start; step > 0 ? i < end : i > end; i += step) chosen.add((int) i);
            picks[(int) axis] = chosen.stream().mapToInt(Integer::intValue).toArray();
        }
        long[] out = new long[rank];
        for (int d = 0; d < rank; d++) out[d] = picks[d].length;
        int n = (int) Constant.size(out);
        float[] f = c.isFloat() ? new float[n] : null;
        long[] l = c.isFloat() ? null : new long[n];
        for (int i = 0; i < n; i++) {
            long src = 0;
            int rest = i;
            long stride = 1;
            for (int d = rank - 1; d >= 0; d--) {
                int idx = (int) (rest % out[d]);
                rest /= (int) out[d];
                src += picks[d][idx] * stride;
                stride *= dims[d];
            }
            if (f != null) f[i] = c.floats()[(int) src];
            else l[i] = c.ints()[(int) src];
        }
        return new Constant(out, f, l);
    }
}
