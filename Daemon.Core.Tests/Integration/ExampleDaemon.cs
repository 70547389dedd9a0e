using System.Reflection;

namespace Daemon.Core.Tests.Integration;

/// <summary>The result of one run of a program.</summary>
public sealed record CommandResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}; stdout: {Output.Trim()}; stderr: {Error.Trim()}";
}

/// <summary>
/// A daemon program under test (by default the example echo daemon, on a free port) in a temp
/// folder of its own that holds its pid and log files. Every pid it learns is remembered and
/// killed by pid on dispose, only if that process's command line names the folder or it is a
/// process this test started itself; nothing is ever killed by name.
/// </summary>
public sealed class ExampleDaemon : IDisposable
{
    private static readonly TimeSpan _commandTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan _patience = TimeSpan.FromSeconds(30);
    private readonly object _lock = new();
    private readonly HashSet<int> _pids = new();
    private readonly Dictionary<int, string> _started = new();
    private readonly List<Process> _holders = new();
    private readonly bool _takesPort;

    /// <summary>The example echo daemon, with <c>--port</c> on a free port.</summary>
    public ExampleDaemon(string? name = null)
        : this(Program, name ?? "d", takesPort: true)
    {
    }

    /// <summary>
    /// <paramref name="program"/> (it may be set later through <see cref="ProgramPath"/>) in a folder
    /// labelled <paramref name="name"/>; <paramref name="takesPort"/>: every command gets <c>--port</c>.
    /// </summary>
    public ExampleDaemon(string program, string name, bool takesPort)
    {
        ProgramPath = program;
        _takesPort = takesPort;
        Folder = TestEnvironment.CreateTestFolder(name);
        Port = takesPort ? FreePort() : 0;
        PidFile = Path.Combine(Folder, "daemon.pid");
        LogFile = Path.Combine(Folder, "daemon.log");
    }

    /// <summary>The Generic Host example (Daemon.Example.Hosted, copied next to the tests, no <c>--port</c>) in a folder labelled <paramref name="name"/>.</summary>
    public static ExampleDaemon Hosted(string name) => new(Path.Combine(AppContext.BaseDirectory, "Daemon.Example.Hosted"), name, takesPort: false);

    /// <summary>The example program: the apphost copied next to the tests.</summary>
    public static string Program => Path.Combine(AppContext.BaseDirectory, "Daemon.Example");

    /// <summary>
    /// The apphost <paramref name="name"/> of the project in <paramref name="folder"/> (relative to
    /// the repository's root), as built in its own output folder in the tests' configuration: the
    /// test project references it, so it is built before the tests.
    /// </summary>
    public static string BuiltProgram(string folder, string name)
    {
        string configuration = typeof(ExampleDaemon).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Debug";
        return Path.Combine(TestEnvironment.RepositoryRoot, folder, "bin", configuration, "net10.0", name);
    }

    /// <summary>The program under test: its apphost.</summary>
    public string ProgramPath { get; set; }

    public string Folder { get; }

    /// <summary>The port every command gets; 0 when the program takes no <c>--port</c>.</summary>
    public int Port { get; }

    public string PidFile { get; }

    public string LogFile { get; }

    /// <summary>Options every command gets after the pid file, log file and port.</summary>
    public List<string> ExtraOptions { get; } = new();

    /// <summary>The options every command gets, so the tests never touch the defaults.</summary>
    public string[] CommonOptions => new[] { "--pid-file", PidFile, "--log-file", LogFile }.Concat(PortOptions).Concat(ExtraOptions).ToArray();

    /// <summary><see cref="CommonOptions"/> single-quoted for a shell script.</summary>
    public string QuotedCommonOptions => string.Join(' ', CommonOptions.Select(a => $"'{a}'"));

    public string Log => File.Exists(LogFile) ? File.ReadAllText(LogFile) : "";

    private string[] PortOptions => _takesPort ? new[] { "--port", Port.ToString(CultureInfo.InvariantCulture) } : Array.Empty<string>();

    /// <summary>Runs a command with the common options and any extra ones.</summary>
    public CommandResult Run(string command, params string[] extra)
    {
        var args = new List<string> { command };
        args.AddRange(CommonOptions);
        args.AddRange(extra);
        return Exec(args, null);
    }

    /// <summary>
    /// Runs <paramref name="program"/> (default: <see cref="ProgramPath"/>) with exactly
    /// <paramref name="args"/>, its input closed, and remembers every pid it prints.
    /// </summary>
    public CommandResult Exec(
        IEnumerable<string> args,
        IDictionary<string, string?>? environment,
        string? program = null,
        string? workingDirectory = null,
        TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? _commandTimeout;
        ProcessStartInfo start = StartInfo(program ?? ProgramPath, args, environment);
        start.RedirectStandardInput = true;
        start.WorkingDirectory = workingDirectory ?? "";

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        return Finish(process, limit);
    }

    /// <summary>
    /// Waits for a command started with <see cref="Launch"/> (or by <see cref="Exec"/>) to exit
    /// and close its output, within <paramref name="timeout"/> (default: a minute), and remembers
    /// every pid it prints. Launch several, then finish each: they run at the same time.
    /// </summary>
    public CommandResult Finish(Process process, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? _commandTimeout;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{process.StartInfo.FileName} {string.Join(' ', process.StartInfo.ArgumentList)} did not finish in {limit}");
        }

        // Reading to the end also proves no daemon kept the caller's pipes open.
        if (!output.Wait(limit) || !error.Wait(limit))
        {
            throw new TimeoutException("the command's output stayed open: a daemon holds the caller's pipe");
        }

        var result = new CommandResult(process.ExitCode, output.Result, error.Result);
        Remember(result.Output);
        return result;
    }

    /// <summary>
    /// Starts <paramref name="program"/> (default: <see cref="ProgramPath"/>) with exactly
    /// <paramref name="args"/> and its output redirected, without waiting; it is tracked.
    /// </summary>
    public Process Launch(IEnumerable<string> args, IDictionary<string, string?>? environment = null, string? program = null)
    {
        Process process = Process.Start(StartInfo(program ?? ProgramPath, args, environment))!;
        Track(process.Id);
        return process;
    }

    /// <summary>
    /// Runs <paramref name="program"/> with <paramref name="args"/> under a resource limit, through
    /// bash's <c>ulimit</c> (<paramref name="limit"/> such as <c>-n 10</c> or <c>-v 20000</c>).
    /// </summary>
    public CommandResult ExecUnderLimit(string limit, string program, IEnumerable<string> args) =>
        Exec(UnderLimit(limit, program, args), null, "/bin/bash");

    /// <summary>As <see cref="ExecUnderLimit"/>, without waiting: the process is tracked.</summary>
    public Process LaunchUnderLimit(string limit, string program, IEnumerable<string> args) =>
        Launch(UnderLimit(limit, program, args), program: "/bin/bash");

    /// <summary>Runs <paramref name="command"/> (a program and its arguments) as <c>nobody</c>, through runuser.</summary>
    public CommandResult ExecAsNobody(IEnumerable<string> command) => Exec(Nobody.Runs(command), null, Nobody.RunUser);

    /// <summary>As <see cref="ExecAsNobody"/>, without waiting: the process is tracked.</summary>
    public Process LaunchAsNobody(IEnumerable<string> command) => Launch(Nobody.Runs(command), program: Nobody.RunUser);

    /// <summary>
    /// Starts <paramref name="command"/> as <c>nobody</c> with its input open: a helper (a lock
    /// holder, a squatter) that runs until its input closes, which dispose does before the kills.
    /// </summary>
    public Process HoldAsNobody(IEnumerable<string> command)
    {
        ProcessStartInfo start = StartInfo(Nobody.RunUser, Nobody.Runs(command), null);
        start.RedirectStandardInput = true;
        Process holder = Process.Start(start)!;
        lock (_lock)
        {
            _holders.Add(holder);
        }

        Track(holder.Id);
        return holder;
    }

    /// <summary>
    /// As nobody, starts a python3 <paramref name="script"/> that takes a lock, prints <c>locked
    /// PID</c> and holds the lock until its input closes (<see cref="HoldAsNobody"/>); that pid.
    /// </summary>
    public int HoldLockAsNobody(string script, params string[] args)
    {
        Process holder = HoldAsNobody(new[] { "python3", "-c", script }.Concat(args));
        string line = holder.StandardOutput.ReadLine() ?? throw new AssertionException("the lock holder failed: " + holder.StandardError.ReadToEnd());
        int pid = int.Parse(line.Split(' ')[1], CultureInfo.InvariantCulture);
        Track(pid);
        return pid;
    }

    /// <summary>The helpers started by <see cref="HoldAsNobody"/> so far.</summary>
    public IReadOnlyList<Process> Holders
    {
        get
        {
            lock (_lock)
            {
                return _holders.ToList();
            }
        }
    }

    /// <summary>
    /// A running example daemon, and a restart (with <paramref name="extra"/> options) whose next
    /// generation has its listeners and waits in its startup hook, on a greeting fifo nobody writes yet.
    /// </summary>
    public (int Old, Process Restart, string Fifo) RestartBlockedInItsStartupHook(params string[] extra)
    {
        int old = Start();
        string fifo = MakeFifo();
        Process restart = Launch(new[] { "restart" }.Concat(CommonOptions).Concat(new[] { "--greeting-file", fifo }).Concat(extra));
        Assert.That(WaitForLog($"Daemon.Example[{old}]: handing 1 listener(s) over to pid ", TimeSpan.FromSeconds(30)), Is.True, Log);
        return (old, restart, fifo);
    }

    /// <summary>Waits until a daemon holds the pid file while it starts; its pid, from <c>status</c>, tracked.</summary>
    public int WaitForStartingDaemon()
    {
        const string Prefix = "starting (pid ";
        int pid = 0;
        bool starting = Eventually(
            () =>
            {
                CommandResult status = Run("status");
                return status.ExitCode == ExitCodes.Starting && status.Output.StartsWith(Prefix, StringComparison.Ordinal)
                    && int.TryParse(status.Output.AsSpan(Prefix.Length, status.Output.IndexOf(')', StringComparison.Ordinal) - Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out pid);
            },
            TimeSpan.FromSeconds(30),
            pollMilliseconds: 10);
        Assert.That(starting, Is.True, "the daemon never held its pid file");
        Track(pid);
        return pid;
    }

    /// <summary>Starts the daemon and returns its pid, failing the test when it does not start.</summary>
    public int Start(params string[] extra)
    {
        CommandResult result = Run("start", extra);
        Assert.That(result.ExitCode, Is.EqualTo(0), result.ToString());
        return ReadPid();
    }

    /// <summary>As <see cref="Start"/>, and <c>start</c> must say <c>started (pid N)</c> of the pid it wrote.</summary>
    public int StartSayingSo(params string[] extra)
    {
        CommandResult started = Run("start", extra);
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = ReadPid();
        Assert.That(started.Output.Trim(), Is.EqualTo($"started (pid {pid})"));
        return pid;
    }

    /// <summary><c>status</c> exits 0 and its first line, the one for scripts, says <c>running (pid <paramref name="pid"/>)</c>.</summary>
    public void AssertRunning(int pid)
    {
        CommandResult status = Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(0), status.ToString());
        Assert.That(FirstLine(status.Output), Is.EqualTo($"running (pid {pid})"));
    }

    /// <summary><c>stop</c> exits 0 saying <c>stopped (pid <paramref name="pid"/>)</c>, and that process is gone.</summary>
    public void StopSayingSo(int pid)
    {
        CommandResult stopped = Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(stopped.Output.Trim(), Is.EqualTo($"stopped (pid {pid})"));
        Assert.That(IsAlive(pid), Is.False);
    }


    public int ReadPid()
    {
        int pid = int.Parse(File.ReadAllText(PidFile).Trim(), CultureInfo.InvariantCulture);
        lock (_lock)
        {
            _pids.Add(pid);
        }

        return pid;
    }

    /// <summary>
    /// Remembers a process this test started itself (its start time guards against pid reuse), so
    /// that dispose kills it if it is still alive.
    /// </summary>
    public void Track(int pid)
    {
        string startTime = StartTime(pid);
        lock (_lock)
        {
            _pids.Add(pid);
            _started[pid] = startTime;
        }
    }

    /// <summary>A fifo in the test's folder, for a greeting file whose reader blocks until it is written.</summary>
    public string MakeFifo()
    {
        string fifo = Path.Combine(Folder, "greeting.fifo");
        NUnit.Framework.Assert.That(Mono.Unix.Native.Syscall.mkfifo(fifo, Mono.Unix.Native.FilePermissions.DEFFILEMODE), NUnit.Framework.Is.EqualTo(0));
        return fifo;
    }

    /// <summary>Sends and receives one line through the echo server, on a connection of its own.</summary>
    public string Echo(string text)
    {
        using var client = new EchoClient(Port);
        return client.Echo(text, timeoutMilliseconds: 30_000);
    }

    /// <summary>Starts <c>run</c> (foreground) on this port and returns once it logged "ready".</summary>
    public Process StartForeground(IDictionary<string, string?>? environment = null, string program = "", params string[] prefix)
    {
        Process process = Launch(prefix.Append("run").Concat(PortOptions), environment, program.Length > 0 ? program : null);
        WaitForReady(process);
        return process;
    }

    /// <summary>Reads the foreground daemon's stderr up to its "ready" line.</summary>
    public static void WaitForReady(Process process)
    {
        string line;
        do
        {
            line = process.StandardError.ReadLine() ?? throw new NUnit.Framework.AssertionException("exited before it was ready");
        }
        while (!line.Contains(": ready", StringComparison.Ordinal));
    }

    /// <summary>True once <paramref name="text"/> is in the log, false after <paramref name="timeout"/> (30 s).</summary>
    public bool WaitForLog(string text, TimeSpan? timeout = null) =>
        WaitForLog(log => log.Contains(text, StringComparison.Ordinal), timeout);

    /// <summary>True once the log satisfies <paramref name="condition"/>, false after <paramref name="timeout"/> (30 s).</summary>
    public bool WaitForLog(Func<string, bool> condition, TimeSpan? timeout = null) => Eventually(() => condition(Log), timeout);

    /// <summary>
    /// True once <paramref name="condition"/> holds, false after <paramref name="timeout"/> (30 s);
    /// it is checked every <paramref name="pollMilliseconds"/>.
    /// </summary>
    public static bool Eventually(Func<bool> condition, TimeSpan? timeout = null, int pollMilliseconds = 20)
    {
        TimeSpan limit = timeout ?? _patience;
        var watch = Stopwatch.StartNew();
        while (!condition())
        {
            if (watch.Elapsed > limit)
            {
                return false;
            }

            Thread.Sleep(pollMilliseconds);
        }

        return true;
    }

    public void Dispose()
    {
        foreach (Process holder in _holders)
        {
            // Closing its input ends the holder; runuser then exits after its child.
            holder.StandardInput.Close();
            holder.WaitForExit(10_000);
            holder.Dispose();
        }

        _holders.Clear();

        // Also any daemon whose command line names this test's folder but whose pid was never printed.
        List<int> pids = ProcessesOfThisTest();
        lock (_lock)
        {
            pids = _pids.Union(pids).ToList();
        }

        foreach (int pid in pids)
        {
            // Only what this test started: its command line names this test's own folder.
            if (!IsAlive(pid) || !IsOurs(pid))
            {
                continue;
            }

            try
            {
                using var process = Process.GetProcessById(pid);
                process.Kill();
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or System.ComponentModel.Win32Exception)
            {
            }

            WaitUntilGone(pid, TimeSpan.FromSeconds(5));
        }

        try
        {
            Directory.Delete(Folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>True while <paramref name="pid"/> runs; a zombie waiting for init counts as gone.</summary>
    public static bool IsAlive(int pid)
    {
        try
        {
            return State(pid) is not ('Z' or 'X');
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>The state letter of /proc/PID/stat: R, S, T (stopped), Z (zombie)...</summary>
    /// <exception cref="IOException">No such process.</exception>
    public static char State(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    public static bool WaitUntilGone(int pid, TimeSpan timeout) => Eventually(() => !IsAlive(pid), timeout, pollMilliseconds: 10);

    /// <summary>Pids of live processes whose command line names this test's folder (or that it started).</summary>
    public List<int> ProcessesOfThisTest()
    {
        var found = new List<int>();
        foreach (string dir in Directory.GetDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), out int pid) && IsAlive(pid) && IsOurs(pid))
            {
                found.Add(pid);
            }
        }

        return found;
    }

    public static string StatusField(int pid, string field)
    {
        foreach (string line in File.ReadAllLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
            {
                return line[(field.Length + 1)..].Trim();
            }
        }

        return "";
    }

    private static string[] UnderLimit(string limit, string program, IEnumerable<string> args) =>
        new[] { "-c", $"ulimit {limit}; exec \"$0\" \"$@\"", program }.Concat(args).ToArray();

    private static ProcessStartInfo StartInfo(string program, IEnumerable<string> args, IDictionary<string, string?>? environment)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }.WithoutDiagnostics();
        foreach (string arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            start.Environment[key] = value;
        }

        return start;
    }

    private bool IsOurs(int pid)
    {
        string? startTime;
        lock (_lock)
        {
            _started.TryGetValue(pid, out startTime);
        }

        if (startTime is { Length: > 0 } && StartTime(pid) == startTime)
        {
            return true;
        }

        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains(Folder, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot.</summary>
    private static string StartTime(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[19];
        }
        catch (IOException)
        {
            return "";
        }
    }

    private void Remember(string output)
    {
        // Every "(pid N)": restart prints the stopped daemon's and the started one's.
        int at = 0;
        while ((at = output.IndexOf("(pid ", at, StringComparison.Ordinal)) >= 0)
        {
            int end = output.IndexOf(')', at);
            if (end > at && int.TryParse(output.AsSpan(at + 5, end - at - 5), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
            {
                lock (_lock)
                {
                    _pids.Add(pid);
                }
            }

            at += 5;
        }
    }

    /// <summary>The first line of a command's output, as <c>status | head -1</c> reads it.</summary>
    public static string FirstLine(string output) => output.Split('\n')[0];

    /// <summary>What <paramref name="socket"/> receives until the peer closes, as ASCII.</summary>
    public static string ReadToEnd(Socket socket)
    {
        var received = new List<byte>();
        var buffer = new byte[256];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
        {
            received.AddRange(buffer[..n]);
        }

        return Encoding.ASCII.GetString(received.ToArray());
    }

    /// <summary>How many times <paramref name="part"/> occurs in <paramref name="text"/>, such as a log line.</summary>
    public static int Count(string text, string part) => (text.Length - text.Replace(part, "", StringComparison.Ordinal).Length) / part.Length;

    /// <summary>
    /// A TCP port that nothing uses now on 127.0.0.1 nor ::1, never given out twice in this run.
    /// Taken below the kernel's ephemeral range: a port bind(0) gives could be given again to
    /// another fixture's probe, or to one of the thousands of client connections the load tests
    /// open, before the daemon it was meant for binds it. A random start keeps two runs on one
    /// machine apart.
    /// </summary>
    public static int FreePort()
    {
        for (int tries = 0; tries < _ports.Count; tries++)
        {
            int port = _ports.Next();
            if (Bindable(IPAddress.Loopback, port) && (!Socket.OSSupportsIPv6 || Bindable(IPAddress.IPv6Loopback, port)))
            {
                return port;
            }
        }

        throw new InvalidOperationException("no free TCP port below the ephemeral range");
    }

    private static readonly PortSequence _ports = PortSequence.BelowEphemeralRange();

    private static bool Bindable(IPAddress address, int port)
    {
        try
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(address, port));
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.AddressAlreadyInUse or SocketError.AddressNotAvailable)
        {
            return e.SocketErrorCode == SocketError.AddressNotAvailable && address.AddressFamily == AddressFamily.InterNetworkV6;
        }
    }

    /// <summary>Ports handed out in turn from a random start within [First, First + Count).</summary>
    private sealed class PortSequence(int first, int count)
    {
        private int _next = Random.Shared.Next(count);

        public int Count => count;

        public int Next() => first + (int)((uint)Interlocked.Increment(ref _next) % (uint)count);

        /// <summary>The 10,000 ports below ip_local_port_range's first (32768 by default), from 1024 up.</summary>
        public static PortSequence BelowEphemeralRange()
        {
            int low = 32768;
            try
            {
                string[] range = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                low = int.Parse(range[0], CultureInfo.InvariantCulture);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
            {
            }

            int first = Math.Max(1024, low - 10_000);
            return new PortSequence(first, Math.Max(1, low - first));
        }
    }
}
