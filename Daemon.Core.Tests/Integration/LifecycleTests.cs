namespace Daemon.Core.Tests.Integration;

/// <summary>The example daemon's whole lifecycle, driven as an administrator would.</summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class LifecycleTests : DaemonFixture
{
    [Test]
    public void Start_Status_Echo_Stop_WorkEndToEnd()
    {
        int pid = _daemon.StartSayingSo();
        Assert.That(File.ReadAllText(_daemon.PidFile), Is.EqualTo($"{pid}\n"), "pid file content");

        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(0), status.ToString());
        Assert.That(status.Output, Does.Match($@"^running \(pid {pid}\)\n  since \d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d (UTC|[+-]\d\d:\d\d) \((\d+ s|1 min \d+ s) ago\)\n"), "the first line for scripts, then since when");
        Assert.That(status.Output, Does.EndWith($"\n  pid file {_daemon.PidFile}\n  log file {_daemon.LogFile}\n"));

        Assert.That(_daemon.Echo("hello"), Is.EqualTo("hello"));

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False, "stop returns only after the daemon exited");
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "the daemon removes its pid file");

        CommandResult after = _daemon.Run("status");
        Assert.That(after.ExitCode, Is.EqualTo(3), after.ToString());
        Assert.That(after.Output.Trim(), Is.EqualTo("not running"));
        Assert.That(_daemon.Log, Does.Contain("starting").And.Contain("ready").And.Contain("stopping (SIGTERM)").And.Contain("stopped (exit 0)"));
    }

    [Test]
    public void Start_SaysAlreadyRunning_AndKeepsOneDaemon()
    {
        int pid = _daemon.Start();
        CommandResult second = _daemon.Run("start");
        Assert.That(second.ExitCode, Is.EqualTo(0), second.ToString());
        Assert.That(second.Output.Trim(), Is.EqualTo($"already running (pid {pid})"));
        Assert.That(_daemon.ProcessesOfThisTest(), Is.EqualTo(new[] { pid }));
    }

    [Test]
    public void Restart_ReplacesTheDaemon()
    {
        int first = _daemon.Start();
        CommandResult restarted = _daemon.Run("restart");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int second = _daemon.ReadPid();
        Assert.That(second, Is.Not.EqualTo(first));
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(30)), Is.True, "the old generation hands over, drains and exits");
        Assert.That(_daemon.Echo("again"), Is.EqualTo("again"));
    }

    [Test]
    public void Restart_StartsTheDaemon_WhenNotRunning()
    {
        CommandResult restarted = _daemon.Run("restart");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(restarted.Output, Does.Contain("not running").And.Contain("started (pid"));
    }

    [Test]
    public void Stop_ReturnsZero_WhenNotRunning()
    {
        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(stopped.Output.Trim(), Is.EqualTo("not running"));
    }

    [Test]
    public void StalePidFile_AfterSigkill_IsReportedThenReplaced()
    {
        int pid = StartThenSigkill();

        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(1), "dead but pid file left: " + status);

        int next = _daemon.Start();
        Assert.That(next, Is.Not.EqualTo(pid), "start replaces a stale pid file");
        Assert.That(_daemon.Echo("fresh"), Is.EqualTo("fresh"));
    }

    [Test]
    public void Stop_RemovesPidFileLeftBySigkilledDaemon()
    {
        int pid = StartThenSigkill();

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void Start_Fails_WhenPortIsInUse_AndLeavesNothing()
    {
        using var squatter = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, _daemon.Port));
        squatter.Listen(1);

        CommandResult started = _daemon.Run("start");
        Assert.That(started.AssertOneClearLine(1), Is.EqualTo($"Daemon.Example: cannot listen on 127.0.0.1:{_daemon.Port}: Address already in use"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "no pid file left");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "no process left");
    }

    [Test]
    public void Daemon_IsDetached_FromSessionTerminalAndFolder()
    {
        int pid = _daemon.Start();
        string[] stat = File.ReadAllText($"/proc/{pid}/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        int ppid = int.Parse(stat[1]);
        int session = int.Parse(stat[3]);
        int ttyNr = int.Parse(stat[4]);
        Assert.Multiple(() =>
        {
            Assert.That(session, Is.Not.EqualTo(pid), "not a session leader");
            Assert.That(session, Is.Not.EqualTo(GetSid()), "left the caller's session");
            Assert.That(ttyNr, Is.EqualTo(0), "no controlling terminal");
            Assert.That(ppid, Is.Not.EqualTo(Environment.ProcessId), "orphaned");
            Assert.That(new DirectoryInfo($"/proc/{pid}/cwd").LinkTarget, Is.EqualTo("/"), "cwd");
            Assert.That(ExampleDaemon.StatusField(pid, "Umask"), Is.EqualTo("0022"), "umask");
            // glibc's pthread_create blocks every signal in the creating thread for a moment, and the
            // runtime starts threads: the mask the daemon keeps is the one seen between those moments.
            Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.StatusField(pid, "SigBlk") == "0000000000000000", TimeSpan.FromSeconds(30)), Is.True, "signal mask: " + ExampleDaemon.StatusField(pid, "SigBlk"));
            Assert.That(Target(pid, 0), Is.EqualTo("/dev/null"), "stdin");
            Assert.That(Target(pid, 1), Is.EqualTo(_daemon.LogFile), "stdout");
            Assert.That(Target(pid, 2), Is.EqualTo(_daemon.LogFile), "stderr");
        });
    }

    [Test]
    public void Daemon_KeepsNoDescriptorItInherited()
    {
        string inherited = Path.Combine(_daemon.Folder, "inherited.txt");
        string script = $"exec 7>'{inherited}'; exec '{ExampleDaemon.Program}' start {_daemon.QuotedCommonOptions}";
        CommandResult started = _daemon.Exec(new[] { "-c", script }, null, "/bin/bash");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();

        var targets = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(fd => new FileInfo(fd).LinkTarget ?? "").ToList();
        Assert.That(targets, Has.None.EqualTo(inherited), "an fd the shell passed in (7>file) is closed");
        Assert.That(targets, Has.None.StartsWith("/dev/pts").And.None.StartsWith("/dev/tty"), "no terminal");
        Assert.That(targets.Count(t => t == _daemon.PidFile), Is.EqualTo(1), "the locked pid file");
    }

    [Test]
    public void KeepDescriptors_PassesTheChosenDescriptorOnly_UnderTheDotnetHost()
    {
        // The test assembly doubles as a daemon program run by "dotnet app.dll", whose
        // re-execution must pass the dll path to the dotnet host.
        string kept = Path.Combine(_daemon.Folder, "kept.txt");
        string dropped = Path.Combine(_daemon.Folder, "dropped.txt");
        string dll = Path.Combine(AppContext.BaseDirectory, "Daemon.Core.Tests.dll");
        string script = $"exec 5>'{kept}' 6>'{dropped}'; exec dotnet '{dll}' keep-fd-daemon start --keep 5 --pid-file '{_daemon.PidFile}' --log-file '{_daemon.LogFile}'";
        CommandResult started = _daemon.Exec(new[] { "-c", script }, null, "/bin/bash");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();

        Assert.That(Target(pid, 5), Is.EqualTo(kept), "the kept descriptor is there, at its number");
        var targets = Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(fd => new FileInfo(fd).LinkTarget ?? "").ToList();
        Assert.That(targets, Has.None.EqualTo(dropped), "the other one is closed");
        Assert.That(File.ReadAllText(kept), Is.EqualTo("kept by the daemon\n"));
        Assert.That(_daemon.Log, Does.Contain("keepfd["));

        CommandResult stopped = _daemon.Exec(new[] { dll, "keep-fd-daemon", "stop", "--pid-file", _daemon.PidFile }, null, "dotnet");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
    }

    [Test]
    public void Start_DoesNotHang_WhenItsOutputIsCaptured()
    {
        // $(myapp start) returns only when every holder of the pipe has exited.
        string script = $"out=$('{ExampleDaemon.Program}' start {_daemon.QuotedCommonOptions}); echo \"got: $out\"";
        var watch = Stopwatch.StartNew();
        CommandResult result = _daemon.Exec(new[] { "-c", script }, null, "/bin/bash");
        _daemon.ReadPid();
        Assert.That(result.Output, Does.StartWith("got: started (pid"));
        Assert.That(watch.Elapsed, Is.LessThan(TimeSpan.FromSeconds(20)));
    }

    [Test]
    public void Reload_SendsSighup_AndReturns7_WhenStopped()
    {
        _daemon.Start();
        CommandResult reloaded = _daemon.Run("reload");
        Assert.That(reloaded.ExitCode, Is.EqualTo(0), reloaded.ToString());
        Assert.That(_daemon.WaitForLog("reloading (SIGHUP)"), Is.True, _daemon.Log);

        _daemon.Run("stop");
        CommandResult notRunning = _daemon.Run("reload");
        Assert.That(notRunning.ExitCode, Is.EqualTo(7), notRunning.ToString());
    }

    [Test]
    public void Run_WithALogFile_StillSaysOnStderrWhyStartupFailed()
    {
        using var squatter = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        squatter.Bind(new IPEndPoint(IPAddress.Loopback, _daemon.Port));
        squatter.Listen(1);
        CommandResult run = _daemon.Run("run");
        Assert.That(run.ExitCode, Is.EqualTo(1), run.ToString());
        Assert.That(run.Error, Is.EqualTo($"Daemon.Example: cannot listen on 127.0.0.1:{_daemon.Port}: Address already in use\n"));
        Assert.That(_daemon.Log, Does.Contain("Address already in use"), "and the log has it too");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void Run_SaysOnce_ThatAnotherDaemonHoldsThePidFile_WithOrWithoutALogFile()
    {
        int pid = _daemon.Start();
        string reason = $"already running (pid {pid}, pid file {_daemon.PidFile})";

        // Without --log-file the log lines are the run's stderr.
        CommandResult bare = _daemon.Exec(new[] { "run", "--pid-file", _daemon.PidFile, "--port", ExampleDaemon.FreePort().ToString() }, null);
        Assert.That(bare.ExitCode, Is.EqualTo(1), bare.ToString());
        Assert.That(ExampleDaemon.Count(bare.Error, "already running"), Is.EqualTo(1), bare.Error);
        Assert.That(bare.Error, Does.Contain($"]: error: {reason}\n"));
        Assert.That(bare.Output, Is.Empty);

        string runLog = Path.Combine(_daemon.Folder, "run.log");
        CommandResult logged = _daemon.Exec(new[] { "run", "--pid-file", _daemon.PidFile, "--log-file", runLog, "--port", ExampleDaemon.FreePort().ToString() }, null);
        Assert.That(logged.ExitCode, Is.EqualTo(1), logged.ToString());
        Assert.That(logged.Error, Is.EqualTo($"Daemon.Example: {reason}\n"), "the caller hears it once");
        Assert.That(ExampleDaemon.Count(File.ReadAllText(runLog), "already running"), Is.EqualTo(1), "and the log has it once");
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(0), "the running daemon is untouched");
    }

    [Test]
    public void PidFile_IsLockedSoThatPgrepSeesIt()
    {
        int pid = _daemon.Start();
        using Process pgrep = Process.Start(new ProcessStartInfo("pgrep", new[] { "-F", _daemon.PidFile, "-L" }) { RedirectStandardOutput = true }.WithoutDiagnostics())!;
        string output = pgrep.StandardOutput.ReadToEnd();
        pgrep.WaitForExit();
        Assert.That(pgrep.ExitCode, Is.EqualTo(0));
        Assert.That(output.Trim(), Is.EqualTo(pid.ToString()));
    }

    [Test]
    public void Run_InForeground_StopsCleanlyOnSigterm()
    {
        using Process process = _daemon.StartForeground();
        Assert.That(_daemon.Echo("fg"), Is.EqualTo("fg"));
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "no pid file without --pid-file");
        Mono.Unix.Native.Syscall.kill(process.Id, Mono.Unix.Native.Signum.SIGTERM);
        Assert.That(process.WaitForExit(10_000), Is.True);
        Assert.That(process.ExitCode, Is.EqualTo(0));
        Assert.That(process.StandardError.ReadToEnd(), Does.Contain("stopped (exit 0)"));
    }

    private static string? Target(int pid, int fd) => new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget;

    private static int GetSid() => Mono.Unix.Native.Syscall.getsid(0);

    /// <summary>A started daemon killed without warning: its pid file stays behind, naming a dead pid.</summary>
    private int StartThenSigkill()
    {
        int pid = _daemon.Start();
        Process.GetProcessById(pid).Kill();
        Assert.That(ExampleDaemon.WaitUntilGone(pid, TimeSpan.FromSeconds(5)), Is.True);
        return pid;
    }
}
