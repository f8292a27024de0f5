// Writes log lines with java.util.logging, as a Java program would: one message per input
// line ("LEVEL<TAB>logger<TAB>message"), formatted by SimpleFormatter with the format given in
// the system property java.util.logging.SimpleFormatter.format.  Used by
// benchmarks/unseen_logs.py to make test logs with real layouts; run with `java UnseenJul.java`.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.SimpleFormatter;
import java.util.logging.StreamHandler;

public class UnseenJul {
    public static void main(String[] args) throws Exception {
        StreamHandler out = new StreamHandler(System.out, new SimpleFormatter());
        out.setLevel(Level.ALL);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        String line;
        long t = Long.parseLong(args[0]);
        while ((line = in.readLine()) != null) {
            String[] p = line.split("\t", 3);
            LogRecord r = new LogRecord(Level.parse(p[0]), p[2]);
            r.setLoggerName(p[1]);
            r.setSourceClassName(p[1]);
            r.setSourceMethodName("run");
            t += 1 + (t % 977);
            r.setInstant(java.time.Instant.ofEpochMilli(t));
            out.publish(r);
        }
        out.flush();
    }
}
