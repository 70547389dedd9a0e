using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// `run` under a fake systemd: socket activation (a parent that binds, forks, puts the socket on
/// descriptor 3 and sets LISTEN_PID to the child's pid before exec) and the watchdog, over a
/// NOTIFY_SOCKET datagram socket the test reads.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class SystemdTests : DaemonFixture
{
    // What systemd does for a .socket unit: bind, then in the child (after fork, before exec)
    // descriptor 3 and LISTEN_PID=its own pid. Prints the child's pid, then its exit code.
    private const string FakeSystemdScript = """
        import os, socket, sys
        port, name, program = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        pid = os.fork()
        if pid == 0:
            if listener.fileno() != 3:
                os.dup2(listener.fileno(), 3)
            os.set_inheritable(3, True)  # dup2 onto itself would leave it close-on-exec
            os.environ.update(LISTEN_FDS=os.environ.get("FAKE_LISTEN_FDS", "1"), LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=name)
            os.execv(program[0], program)
        listener.close()
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print("exit", os.waitstatus_to_exitcode(status), flush=True)
        """;

    private Socket _notify = null!;
    private string _notifyPath = null!;

    protected override string FolderLabel => "systemd";

    [SetUp]
    public void BindTheNotifySocket()
    {
        _notifyPath = Path.Combine(_daemon.Folder, "notify.sock");
        _notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        _notify.Bind(new UnixDomainSocketEndPoint(_notifyPath));
        _notify.ReceiveTimeout = 30_000;
    }

    [TearDown]
    public void CloseTheNotifySocket() => _notify.Dispose();

    [Test]
    public void SocketActivated_ServesOnThePassedSocket_ReportsReady_AndStopsCleanly()
    {
        using Process systemd = FakeSystemdRuns("echo", ExampleDaemon.Program, "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture));
        int daemon = int.Parse(systemd.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        _daemon.Track(daemon);

        Assert.That(Receive(), Is.EqualTo($"READY=1\nMAINPID={daemon}"));
        Assert.That(_daemon.Echo("activated"), Is.EqualTo("activated"));
        Assert.That(Syscall.kill(daemon, Signum.SIGTERM), Is.EqualTo(0));
        Assert.That(Receive(), Is.EqualTo("STOPPING=1"));
        Assert.That(systemd.WaitForExit(30_000), Is.True);
        Assert.That(systemd.StandardOutput.ReadToEnd(), Is.EqualTo("exit 0\n"));
        string err = systemd.StandardError.ReadToEnd();
        Assert.That(err, Does.Contain($"systemd passed listener 'echo' on 127.0.0.1:{_daemon.Port}").And.Contain("(inherited as 'echo')"), err);
    }

    [Test]
    public void SocketActivated_AnUnclaimedSocket_IsLoggedByName_AndClosed()
    {
        // Systemd's socket is on another port than --port asks for, and named otherwise: not ours.
        int other = ExampleDaemon.FreePort();
        using Process systemd = FakeSystemd(other, "spare", ExampleDaemon.Program, "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture));
        int daemon = int.Parse(systemd.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        _daemon.Track(daemon);

        Assert.That(Receive(), Does.StartWith("READY=1"));
        Assert.That(_daemon.Echo("own socket"), Is.EqualTo("own socket"));
        Assert.That(Syscall.kill(daemon, Signum.SIGTERM), Is.EqualTo(0));
        Assert.That(systemd.WaitForExit(30_000), Is.True);
        Assert.That(systemd.StandardOutput.ReadToEnd(), Is.EqualTo("exit 0\n"));
        Assert.That(systemd.StandardError.ReadToEnd(), Does.Contain($"inherited listener 'spare' on 127.0.0.1:{other} was not claimed; closing it"));
    }

    [Test]
    public void ForeignListenPid_IsIgnored_AndDescriptor3LeftAlone()
    {
        // LISTEN_PID names another process: these sockets were not passed to us.
        string folder = _daemon.Folder;
        string script = $"exec 3>'{Path.Combine(folder, "not-a-socket")}'; LISTEN_FDS=1 LISTEN_PID=1 LISTEN_FDNAMES=echo exec \"$0\" \"$@\"";
        using Process run = _daemon.Launch(new[] { "-c", script, ExampleDaemon.Program, "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) },
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _notifyPath }, "/bin/bash");

        Assert.That(Receive(), Is.EqualTo($"READY=1\nMAINPID={run.Id}"));
        Assert.That(_daemon.Echo("own socket"), Is.EqualTo("own socket"));
        Assert.That(Syscall.kill(run.Id, Signum.SIGTERM), Is.EqualTo(0));
        Assert.That(run.WaitForExit(30_000), Is.True);
        Assert.That(run.ExitCode, Is.EqualTo(0));
        Assert.That(run.StandardError.ReadToEnd(), Does.Not.Contain("systemd passed"));
    }

    [Test]
    public void SocketActivated_WithMoreDescriptorsThanSockets_IsRefusedWithOneLine_AndLeavesNoProcess()
    {
        // LISTEN_FDS=3 with one socket: 4 and 5 are the runtime's own files, which were taken as
        // listeners and closed (the signal pipe among them: "ready", no accept, SIGTERM ignored).
        using Process systemd = FakeSystemdSaying("3", _daemon.Port, "echo:second:third", new[] { ExampleDaemon.Program, "run" }.Concat(_daemon.CommonOptions));
        int daemon = int.Parse(systemd.StandardOutput.ReadLine()!, CultureInfo.InvariantCulture);
        _daemon.Track(daemon);

        CommandResult result = _daemon.Finish(systemd, TimeSpan.FromSeconds(30));
        Assert.That(result.Output, Is.EqualTo("exit 1\n"), result.ToString());
        Assert.That(result.Error, Does.Match(@"^Daemon\.Example: socket activation: LISTEN_FDS=3, but descriptor 4 \('second'\) (is|cannot) [^\n]*; nothing was taken\n$"), result.ToString());
        Assert.That(_daemon.Log, Does.Contain("error: socket activation: LISTEN_FDS=3").And.Not.Contain(": ready"));
        Assert.That(Receive(), Does.StartWith("STATUS=socket activation: LISTEN_FDS=3, but descriptor 4 ('second') "), "the reason, for systemctl status");
        Assert.That(_notify.Available, Is.Zero, "no READY=1");
        Assert.That(ExampleDaemon.WaitUntilGone(daemon, TimeSpan.FromSeconds(30)), Is.True);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "nothing left running");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void SocketActivated_ARegularFileAtDescriptor3_IsRefusedWithOneLine()
    {
        // A file named echo on descriptor 3, for this very process (bash's $$ is the pid exec keeps).
        string script = $"exec 3>'{Path.Combine(_daemon.Folder, "not-a-socket")}'; LISTEN_FDS=1 LISTEN_PID=$$ LISTEN_FDNAMES=echo exec \"$0\" \"$@\"";
        CommandResult result = _daemon.Exec(new[] { "-c", script, ExampleDaemon.Program, "run" }.Concat(_daemon.CommonOptions),
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _notifyPath }, "/bin/bash", timeout: TimeSpan.FromSeconds(60));

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Failure), result.ToString());
        Assert.That(result.Error, Is.EqualTo("Daemon.Example: socket activation: LISTEN_FDS=1, but descriptor 3 ('echo') is a regular file, not a socket; nothing was taken\n"), result.ToString());
        Assert.That(_daemon.Log, Does.Not.Contain(": ready").And.Not.Contain("unhandled exception"));
        Assert.That(Receive(), Is.EqualTo("STATUS=socket activation: LISTEN_FDS=1, but descriptor 3 ('echo') is a regular file, not a socket; nothing was taken"), "the reason, for systemctl status");
        Assert.That(_notify.Available, Is.Zero, "no READY=1");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "nothing left running");
    }

    [Test]
    public void ANotifySocketNobodyReads_NeitherStopsServingNorStopping()
    {
        // Pings every 10 ms fill the receiver's queue at once; the test never reads it. Before, each
        // send blocked a pool thread for ever: run stopped serving, and stop timed out on STOPPING=1.
        var environment = new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _notifyPath, ["WATCHDOG_USEC"] = "20000" };
        using Process run = _daemon.Launch(new[] { "run" }.Concat(_daemon.CommonOptions), environment);
        Assert.That(_daemon.WaitForLog(": ready", TimeSpan.FromSeconds(60)), Is.True, _daemon.Log);
        Assert.That(_daemon.WaitForLog("not delivered to NOTIFY_SOCKET", TimeSpan.FromSeconds(60)), Is.True, _daemon.Log);

        for (int i = 0; i < 20; i++)
        {
            Assert.That(_daemon.Echo($"still serving {i}"), Is.EqualTo($"still serving {i}"));
        }

        CommandResult stop = _daemon.Run("stop");
        Assert.That(stop.ExitCode, Is.EqualTo(ExitCodes.Success), stop.ToString());
        Assert.That(stop.Output, Does.StartWith($"stopped (pid {run.Id})"));
        Assert.That(run.WaitForExit(30_000), Is.True);
        Assert.That(run.ExitCode, Is.EqualTo(ExitCodes.Success));
        Assert.That(ExampleDaemon.Count(_daemon.Log, "not delivered to NOTIFY_SOCKET"), Is.EqualTo(1), "said once a minute at most: " + _daemon.Log);
        Assert.That(_daemon.Log, Does.Contain("later messages are dropped at once until it reads again"));
    }

    [Test]
    public void ANotifySocketPathTooLong_IsRefusedWithOneLine_NoStackTrace()
    {
        // 120 bytes: UnixDomainSocketEndPoint threw in the runtime's constructor (exit 134, a stack trace).
        string path = "/" + new string('n', 119);
        CommandResult result = _daemon.Exec(new[] { "run" }.Concat(_daemon.CommonOptions), new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path });

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Failure), result.ToString());
        Assert.That(result.Error, Is.EqualTo($"Daemon.Example: cannot use NOTIFY_SOCKET: {path} is 120 bytes long, more than the 107 a Unix socket address holds; sd_notify could not tell the service manager anything\n"));
        CommandAssertions.AssertNoStackTrace(_daemon.Log);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "nothing left running");
    }

    [Test]
    public void Watchdog_BelowWhatATimerKeeps_IsClamped_SaidSo_AndKeepsPinging()
    {
        // 1000 us: half of it was 0 whole milliseconds, and a Timer with a period of 0 fires once.
        using Process run = RunWithWatchdog(usec: 1000, pid: null);
        ReceiveReadyAndStore(run.Id);
        for (int i = 0; i < 5; i++)
        {
            Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"), $"ping {i + 1}");
        }

        string log = Stop(run);
        Assert.That(log, Does.Contain("warning: watchdog: WATCHDOG_USEC=1000 asks for a ping every 0.5 ms, less than a timer can keep; WATCHDOG=1 every 1 ms while healthy instead"), log);
    }

    [Test]
    public void Watchdog_PingsAtHalfTheInterval_WhileHealthy()
    {
        using Process run = RunWithWatchdog(usec: 400_000, pid: null);
        ReceiveReadyAndStore(run.Id);
        // A ping's arrival is its receipt only when the test was already waiting for it: one that
        // was queued while the test thread was held up would look closer to the previous one.
        var gaps = new List<double>();
        long previous = 0;
        while (gaps.Count < 4)
        {
            bool waited = _notify.Available == 0;
            Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
            long now = Stopwatch.GetTimestamp();
            if (waited && previous != 0)
            {
                gaps.Add((now - previous) * 1000.0 / Stopwatch.Frequency);
            }

            previous = waited ? now : 0;
        }

        // Every 200 ms: never faster than that (a lower bound only, a slow machine sends later).
        Assert.That(gaps.Average(), Is.GreaterThan(150), string.Join(", ", gaps));
        Stop(run);
    }

    [Test]
    public void Watchdog_StopsPinging_OnceTheHealthCheckFails_AndSaysWhyOnce()
    {
        using Process run = RunWithWatchdog(usec: 200_000, pid: null, "--simulate-fault", "unhealthy");
        ReceiveReadyAndStore(run.Id);
        for (int i = 0; i < 3; i++)
        {
            Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"), "the first three checks pass");
        }

        // The fourth check fails: no ping follows, while the daemon still runs and serves.
        _notify.ReceiveTimeout = 2_000;
        Assert.That(() => _notify.Receive(new byte[256]), Throws.InstanceOf<SocketException>(), "no ping for ten intervals");
        Assert.That(_daemon.Echo("still serving"), Is.EqualTo("still serving"));
        _notify.ReceiveTimeout = 30_000;
        string log = Stop(run);
        Assert.That(ExampleDaemon.Count(log, "watchdog: the health check failed; no longer pinging"), Is.EqualTo(1), log);
    }

    [Test]
    public void Watchdog_ForAnotherPid_NeverPings()
    {
        using Process run = RunWithWatchdog(usec: 200_000, pid: 1);
        ReceiveReadyAndStore(run.Id);
        _notify.ReceiveTimeout = 2_000;
        Assert.That(() => _notify.Receive(new byte[256]), Throws.InstanceOf<SocketException>(), "no ping for ten intervals");
        _notify.ReceiveTimeout = 30_000;
        Assert.That(Stop(run), Does.Not.Contain("watchdog:"));
    }

    [Test]
    public void HostedDaemon_UnderRun_PingsTheWatchdog_Too()
    {
        using var hosted = ExampleDaemon.Hosted("systemd-hosted");
        var environment = new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _notifyPath, ["WATCHDOG_USEC"] = "400000" };
        using Process run = hosted.Launch(new[] { "run" }, environment);
        Assert.That(Receive(), Is.EqualTo($"READY=1\nMAINPID={run.Id}"));
        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        Assert.That(Receive(), Is.EqualTo("WATCHDOG=1"));
        Assert.That(Syscall.kill(run.Id, Signum.SIGTERM), Is.EqualTo(0));
        Assert.That(run.WaitForExit(30_000), Is.True);
        Assert.That(run.ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void AFailedStartup_TellsTheServiceManagerWhy_WithItsErrno()
    {
        // systemctl status shows STATUS=; start-stop-daemon --notify-await fails at once on ERRNO=.
        using var squatter = new TcpListener(IPAddress.Loopback, _daemon.Port);
        squatter.Start();
        CommandResult result = _daemon.Exec(new[] { "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) }, new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _notifyPath });

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Failure), result.ToString());
        Assert.That(Receive(), Is.EqualTo($"STATUS=cannot listen on 127.0.0.1:{_daemon.Port}: Address already in use\nERRNO=98"));
        Assert.That(_notify.Available, Is.Zero, "no READY=1");
    }

    [Test]
    public void UnderTheJournal_RunMarksEachLineWithItsPriority_AndLeavesTimeNameAndPidToTheJournal()
    {
        using Process run = RunUnderJournalStream(JournalStreamOfStandardError, "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture));
        Assert.That(run.StandardError.ReadLine(), Is.EqualTo("<6>starting"));
        Assert.That(run.StandardError.ReadLine(), Is.EqualTo($"<6>listening on 127.0.0.1:{_daemon.Port}"));
        Assert.That(run.StandardError.ReadLine(), Is.EqualTo("<6>ready"));
        Assert.That(Stop(run), Does.Contain("<6>stopping (SIGTERM)\n").And.EndWith("<6>stopped (exit 0)\n"));
    }

    [Test]
    public void UnderTheJournal_EveryLineOfAStackTrace_KeepsTheErrorPriority()
    {
        using Process run = RunUnderJournalStream(JournalStreamOfStandardError, "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture), "--simulate-fault", "startup-throws");
        CommandResult result = _daemon.Finish(run);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Failure), result.ToString());
        string[] lines = result.Error.TrimEnd('\n').Split('\n');
        Assert.That(lines[0], Is.EqualTo("<6>starting"));
        Assert.That(lines[1], Is.EqualTo("<3>error: startup failed: simulated startup fault"));
        Assert.That(lines[2], Is.EqualTo("<3>System.InvalidOperationException: simulated startup fault"));
        Assert.That(lines.Skip(3).ToArray(), Has.Length.GreaterThan(0).And.All.StartsWith("<3>   at "), result.Error);
    }

    [Test]
    public void AJournalStreamNamingAnotherFile_LeavesTheLinesAsTheyAre()
    {
        // JOURNAL_STREAM inherited by a program whose stderr was redirected: not the journal.
        using Process run = RunUnderJournalStream("/dev/null", "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture));
        Assert.That(run.StandardError.ReadLine(), Does.Match(@$"^\d{{4}}-\d\d-\d\dT[0-9:.+-]+ Daemon\.Example\[{run.Id}\]: starting$"));
        ExampleDaemon.WaitForReady(run);
        Stop(run);
    }

    [Test]
    public void UnderTheJournal_ALogFile_KeepsItsFormat_AndTheFailureToldOnStderrIsAnError()
    {
        using Process run = RunUnderJournalStream(JournalStreamOfStandardError, new[] { "run", "--simulate-fault", "startup-throws" }.Concat(_daemon.CommonOptions).ToArray());
        CommandResult result = _daemon.Finish(run);

        Assert.That(result.ExitCode, Is.EqualTo(ExitCodes.Failure), result.ToString());
        Assert.That(result.Error, Is.EqualTo("<3>Daemon.Example: startup failed: simulated startup fault\n"));
        Assert.That(_daemon.Log, Does.Match(@$"^\d{{4}}-\d\d-\d\dT[0-9:.+-]+ Daemon\.Example\[{run.Id}\]: starting\n"));
        Assert.That(_daemon.Log, Does.Contain($"Daemon.Example[{run.Id}]: error: startup failed: simulated startup fault\n").And.Not.Contain("<3>"));
    }

    /// <summary>What <see cref="RunUnderJournalStream"/> takes JOURNAL_STREAM from for the journal: the program's own stderr.</summary>
    private const string JournalStreamOfStandardError = "/proc/self/fd/2";

    /// <summary>
    /// Runs the example with JOURNAL_STREAM set, as systemd sets it, to the device and inode of
    /// <paramref name="streamOf"/> (stat's own stderr is the program's, a pipe the test reads).
    /// </summary>
    private Process RunUnderJournalStream(string streamOf, params string[] args) => _daemon.Launch(
        new[] { "-c", $"export JOURNAL_STREAM=$(stat -L -c %d:%i {streamOf}) && exec \"$0\" \"$@\"", ExampleDaemon.Program }.Concat(args),
        program: "/bin/bash");

    private Process FakeSystemdRuns(string name, params string[] program) => FakeSystemd(_daemon.Port, name, program);

    private Process FakeSystemd(int port, string name, params string[] program) => FakeSystemdSaying("1", port, name, program);

    /// <summary>The fake systemd with one socket, but LISTEN_FDS=<paramref name="listenFds"/>.</summary>
    private Process FakeSystemdSaying(string listenFds, int port, string name, IEnumerable<string> program) => _daemon.Launch(
        new[] { "-c", FakeSystemdScript, port.ToString(CultureInfo.InvariantCulture), name }.Concat(program),
        new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = _notifyPath, ["FAKE_LISTEN_FDS"] = listenFds },
        "python3");

    private Process RunWithWatchdog(long usec, int? pid, params string[] extra)
    {
        var environment = new Dictionary<string, string?>
        {
            ["NOTIFY_SOCKET"] = _notifyPath,
            ["WATCHDOG_USEC"] = usec.ToString(CultureInfo.InvariantCulture),
            ["WATCHDOG_PID"] = pid?.ToString(CultureInfo.InvariantCulture),
        };
        return _daemon.Launch(new[] { "run", "--port", _daemon.Port.ToString(CultureInfo.InvariantCulture) }.Concat(extra), environment);
    }

    /// <summary>Stops a foreground daemon with SIGTERM; its standard error, the log of <c>run</c>.</summary>
    private static string Stop(Process run)
    {
        Assert.That(Syscall.kill(run.Id, Signum.SIGTERM), Is.EqualTo(0));
        Assert.That(run.WaitForExit(30_000), Is.True);
        Assert.That(run.ExitCode, Is.EqualTo(0));
        return run.StandardError.ReadToEnd();
    }

    /// <summary>
    /// READY=1, then the listener the daemon bound, given to systemd's fd store (its descriptor,
    /// attached, is closed by the kernel: this plain receive takes no control data).
    /// </summary>
    private void ReceiveReadyAndStore(int pid)
    {
        Assert.That(Receive(), Is.EqualTo($"READY=1\nMAINPID={pid}"));
        Assert.That(Receive(), Is.EqualTo("FDSTORE=1\nFDNAME=stored.echo"));
    }

    private string Receive()
    {
        var buffer = new byte[4096];
        int n = _notify.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

}
