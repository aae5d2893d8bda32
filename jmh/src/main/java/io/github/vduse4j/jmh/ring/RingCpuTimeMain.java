package io.github.vduse4j.jmh.ring;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.LongSupplier;

/**
 * Runs the single-thread ring benchmark loops outside JMH and divides chains by the thread's CPU time instead of wall
 * time: on a shared, overloaded machine this estimates what one uncontended core does (time the thread spent
 * descheduled is not counted; cache pollution by the neighbours still is). Not a replacement for JMH, a cross-check.
 *
 * <pre>java --enable-native-access=ALL-UNNAMED -cp jmh/target/benchmarks.jar \
 *     io.github.vduse4j.jmh.ring.RingCpuTimeMain device|single split|packed BATCH</pre>
 */
public final class RingCpuTimeMain {
    private static long sink;

    private RingCpuTimeMain() {}

    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: RingCpuTimeMain device|single split|packed BATCH");
            System.exit(2);
        }
        String kind = args[0];
        String ring = args[1];
        int batch = Integer.parseInt(args[2]);
        LongSupplier op;
        if (kind.equals("device")) {
            RingDeviceOnlyBenchmark b = new RingDeviceOnlyBenchmark();
            b.ring = ring;
            b.batch = batch;
            b.setup();
            op = b::popComplete;
        } else {
            RingSingleThreadBenchmark b = new RingSingleThreadBenchmark();
            b.ring = ring;
            b.batch = batch;
            b.setup();
            op = b::popComplete;
        }
        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        List<Double> rates = new ArrayList<>();
        for (int it = 0; it < 16; it++) {
            long cpu0 = mx.getCurrentThreadCpuTime();
            long wall0 = System.nanoTime();
            long chains = 0;
            while (System.nanoTime() - wall0 < 500_000_000L) {
                for (int k = 0; k < 100; k++) sink += op.getAsLong();
                chains += 100L * RingSingleThreadBenchmark.CHAINS_PER_INVOCATION;
            }
            double rate = chains / ((mx.getCurrentThreadCpuTime() - cpu0) / 1e9) / 1e6;
            if (it >= 6) rates.add(rate);   // first 6 half-seconds are warm-up
        }
        Collections.sort(rates);
        System.out.printf("%s %s batch %d: %.1f M chains per CPU-second (median of %d), max %.1f%n", kind, ring,
                batch, rates.get(rates.size() / 2), rates.size(), rates.get(rates.size() - 1));
        if (sink == 42) System.out.println();
    }
}
