package io.github.vduse4j.blockdev.cli;

import io.github.vduse4j.bindings.Affinity;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import picocli.CommandLine;

/**
 * Parses a CPU list like {@code 2,3} or {@code 0-3,6} and checks each CPU is one this process may run on. The
 * result is one {@link CpuList} value: picocli treats an {@code int[]} option as multi-valued and would hand each
 * element to the converter.
 */
final class CpuListParser implements CommandLine.ITypeConverter<CpuListParser.CpuList> {
    /** The CPUs of one {@code --cpus} option, in the order given. */
    record CpuList(int[] cpus) { }

    @Override
    public CpuList convert(String value) {
        List<Integer> cpus = new ArrayList<>();
        try {
            for (String part : value.split(",")) {
                String[] range = part.trim().split("-", -1);
                int from = Integer.parseInt(range[0].trim());
                int to = range.length == 2 ? Integer.parseInt(range[1].trim()) : from;
                if (range.length > 2 || from < 0 || to < from || to - from > 4096) {
                    throw new NumberFormatException(part);
                }
                for (int c = from; c <= to; c++) {
                    cpus.add(c);
                }
            }
        } catch (NumberFormatException e) {
            throw new CommandLine.TypeConversionException("'" + value + "' is not a CPU list (examples: 2,3 or 0-3)");
        }
        int[] allowed = Affinity.currentThread();
        for (int c : cpus) {
            if (Arrays.stream(allowed).noneMatch(a -> a == c)) {
                throw new CommandLine.TypeConversionException("CPU " + c + " is not available to this process (allowed: "
                        + Arrays.toString(allowed) + ")");
            }
        }
        return new CpuList(cpus.stream().mapToInt(Integer::intValue).toArray());
    }
}
