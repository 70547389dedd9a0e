using Daemon.Commands;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// The example with the tools administrators already use: Debian's start-stop-daemon and the LSB
/// init functions (/lib/lsb/init-functions). Each test is a row of docs/RELIABILITY.md.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class OtherToolsTests : DaemonFixture
{
    private const string StartStopDaemon = "/usr/sbin/start-stop-daemon";
    private const string InitFunctions = "/lib/lsb/init-functions";

    protected override string FolderLabel => "tools";

    /// <summary>How the daemon is run under start-stop-daemon: the apphost, the dotnet host, or a program file replaced since (an upgrade).</summary>
    public enum Launch
    {
        Apphost,
        DotnetHost,
        ReplacedProgramFile,
    }

    [TestCase(Launch.Apphost)]
    [TestCase(Launch.DotnetHost)]
    [TestCase(Launch.ReplacedProgramFile)]
    public void StartStopDaemonsPidFile_IsThisDaemons_StatusSaysRunning_AndStopStopsIt(Launch launch)
    {
        int pid = StartWithStartStopDaemon(launch);

        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(ExitCodes.Success), status.ToString());
        Assert.That(ExampleDaemon.FirstLine(status.Output), Is.EqualTo($"running (pid {pid})"));
        Assert.That(status.Output, Does.Contain($"  pid file {_daemon.PidFile}, not locked by the daemon (another tool wrote it)\n"));
        Assert.That(_daemon.Run("start").Output, Is.EqualTo($"already running (pid {pid}; pid file {_daemon.PidFile} is not locked by it)\n"), "no second copy");

        CommandResult stop = _daemon.Run("stop");
        Assert.That((stop.ExitCode, stop.Output), Is.EqualTo((0, $"stopped (pid {pid})\n")), stop.ToString());
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "removed once the daemon exited, as LSB killproc does");
        Assert.That(ToolStatus(), Is.EqualTo(3), "start-stop-daemon agrees: not running");
    }

    [Test]
    public void StartStopDaemonsPidFile_IsNeverRemoved_WhileTheDaemonLives()
    {
        int pid = StartWithStartStopDaemon(Launch.Apphost, "--simulate-fault", "ignore-stop");

        CommandResult stop = _daemon.Run("stop", "--stop-timeout", "1");
        Assert.That((stop.ExitCode, stop.Error), Is.EqualTo((1, $"Daemon.Example: pid {pid} did not stop within 1 s (stop --force sends SIGKILL)\n")), stop.ToString());
        Assert.That(ExampleDaemon.IsAlive(pid), Is.True);
        Assert.That(File.ReadAllText(_daemon.PidFile), Is.EqualTo($"{pid}\n"), "still there, still naming it");
        Assert.That(ToolStatus(), Is.EqualTo(0), "start-stop-daemon still finds it");

        CommandResult killed = _daemon.Run("stop", "--stop-timeout", "1", "--force");
        Assert.That((killed.ExitCode, killed.Output), Is.EqualTo((0, $"killed (pid {pid}) after 1 s\n")), killed.ToString());
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
    }

    [Test]
    public void UnlockedPidFileNamingAnotherProgram_IsStale_AndThatProgramIsNeverSignalled()
    {
        using Process stranger = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        _daemon.Track(stranger.Id);
        File.WriteAllText(_daemon.PidFile, $"{stranger.Id}\n");

        CommandResult status = _daemon.Run("status");
        Assert.That((status.ExitCode, status.Output), Is.EqualTo((1, $"not running, but pid file {_daemon.PidFile} is left (it names \"{stranger.Id}\", now another program's pid): it died or was killed; see {_daemon.LogFile}\n")), status.ToString());

        CommandResult stop = _daemon.Run("stop");
        Assert.That((stop.ExitCode, stop.Output), Is.EqualTo((0, "not running\n")), stop.ToString());
        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(7));
        Assert.That(ExampleDaemon.State(stranger.Id), Is.Not.EqualTo('Z'), "the stranger was never signalled");
        Assert.That(stranger.HasExited, Is.False);
    }

    [Test]
    public void UnlockedPidFileNamingAnotherUsersProcess_IsUnknown_ToAUserWhoCannotLookAtIt()
    {
        TestEnvironment.RequireRoot();
        string program = TestEnvironment.CopyForAnotherUser(ExampleDaemon.Program, _daemon.Folder);
        using Process rootsProcess = Process.Start(new ProcessStartInfo("sleep", "600") { UseShellExecute = false })!;
        _daemon.Track(rootsProcess.Id);
        File.WriteAllText(_daemon.PidFile, $"{rootsProcess.Id}\n");
        Assert.That(Mono.Unix.Native.Syscall.chmod(_daemon.PidFile, Mono.Unix.Native.FilePermissions.DEFFILEMODE & ~(Mono.Unix.Native.FilePermissions.S_IWGRP | Mono.Unix.Native.FilePermissions.S_IWOTH)), Is.EqualTo(0));

        CommandResult status = _daemon.ExecAsNobody(new[] { program, "status" }.Concat(_daemon.CommonOptions));
        Assert.That((status.ExitCode, status.Error), Is.EqualTo((ExitCodes.Unknown, $"Daemon.Example: pid file {_daemon.PidFile} is not locked and names \"{rootsProcess.Id}\", a process whose program only root or its user can read: cannot tell whether it is this daemon\n")), status.ToString());
        CommandResult stop = _daemon.ExecAsNobody(new[] { program, "stop" }.Concat(_daemon.CommonOptions));
        Assert.That(stop.ExitCode, Is.EqualTo(1), stop.ToString());
        Assert.That(File.Exists(_daemon.PidFile), Is.True, "left as it was");
        Assert.That(rootsProcess.HasExited, Is.False);
    }

    [Test]
    public void DuringASlowStartup_OtherToolsSeeThePid_WhileStatusSaysStarting()
    {
        RequireTools();
        string fifo = _daemon.MakeFifo();
        using Process start = _daemon.Launch(new[] { "start" }.Concat(_daemon.CommonOptions).Concat(new[] { "--greeting-file", fifo }));
        int pid = _daemon.WaitForStartingDaemon();

        Assert.That(File.ReadAllText(_daemon.PidFile), Is.EqualTo($"{pid}\n"), "the pid from the first moment");
        Assert.That(ToolStatus(), Is.EqualTo(0), "start-stop-daemon --status");
        CommandResult pidof = Lsb($"pidofproc -p \"$1\" \"$2\"");
        Assert.That((pidof.ExitCode, pidof.Output), Is.EqualTo((0, $"{pid}\n")), "LSB pidofproc: " + pidof);
        CommandResult status = _daemon.Run("status");
        Assert.That((status.ExitCode, status.Output), Is.EqualTo((ExitCodes.Starting, $"starting (pid {pid})\n")), "still starting: the file is not how readiness is told");

        File.WriteAllText(fifo, "hello\n");
        CommandResult started = _daemon.Finish(start);
        Assert.That((started.ExitCode, started.Output), Is.EqualTo((0, $"started (pid {pid})\n")), started.ToString());
        Assert.That(ExampleDaemon.FirstLine(_daemon.Run("status").Output), Is.EqualTo($"running (pid {pid})"));
        Assert.That(Lsb("status_of_proc -p \"$1\" \"$2\" example").ExitCode, Is.EqualTo(0), "LSB status_of_proc");
    }

    [Test]
    public void StartStopDaemonNotifyAwait_FailsAtOnce_WithTheErrnoOfAFailedStartup()
    {
        // start-stop-daemon binds its own NOTIFY_SOCKET; ERRNO= ends its wait. Without it, it would
        // wait out --notify-timeout (120 s), longer than Exec waits for it (60 s).
        RequireTools();
        using var squatter = new TcpListener(IPAddress.Loopback, _daemon.Port);
        squatter.Start();
        CommandResult started = _daemon.Exec(NotifyAwait("--notify-timeout", "120"), null, StartStopDaemon);

        Assert.That(started.ExitCode, Is.EqualTo(2), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"{StartStopDaemon}: program failed to initialize (Address already in use)\n"), started.ToString());
        Assert.That(_daemon.Log, Does.Contain($"error: cannot listen on 127.0.0.1:{_daemon.Port}: Address already in use"));

        // ERRNO= goes out before the daemon's last steps: start-stop-daemon may return while it exits.
        Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().Count == 0, TimeSpan.FromSeconds(30)), Is.True, "nothing left running");
    }

    [Test]
    public void StartStopDaemonNotifyAwait_ReturnsOnceTheDaemonIsReady()
    {
        RequireTools();
        CommandResult started = _daemon.Exec(NotifyAwait("--make-pidfile", "--pidfile", _daemon.PidFile), null, StartStopDaemon);
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();

        // Ready means listening: no wait for a log line.
        Assert.That(_daemon.Echo("ready at once"), Is.EqualTo("ready at once"));
        _daemon.StopSayingSo(pid);
        Assert.That(_daemon.Log, Does.Contain(": ready").And.Not.Contain("warning:"), "nothing sent after READY=1 to a receiver gone (no FDSTORE=1)");
    }

    [Test]
    public void StartStopDaemonNotifyAwait_IsNotExtended_SoItsOwnTimeoutHolds()
    {
        // dpkg reads EXTEND_TIMEOUT_USEC as milliseconds: the daemon's 5 s would keep it waiting 83
        // minutes, past Exec's minute. Without them, --notify-timeout ends it at 3 s.
        RequireTools();
        CommandResult started = _daemon.Exec(NotifyAwait("--notify-timeout", "3", "--make-pidfile", "--pidfile", _daemon.PidFile).Concat(new[] { "--startup-delay", "600" }), null, StartStopDaemon);

        Assert.That(started.ExitCode, Is.EqualTo(2), started.ToString());
        Assert.That(started.Error, Is.EqualTo($"{StartStopDaemon}: timed out waiting for a notification\n"), started.ToString());
        Assert.That(_daemon.WaitForLog("startup delay: 600 s", TimeSpan.FromSeconds(30)), Is.True, _daemon.Log);

        // start-stop-daemon leaves the daemon it gave up on running: stopping it is the script's part.
        CommandResult stop = _daemon.Run("stop");
        Assert.That(stop.ExitCode, Is.EqualTo(0), stop.ToString());
        Assert.That(_daemon.Log, Does.Contain("error: stopped by SIGTERM during startup"));
    }

    /// <summary>
    /// start-stop-daemon's arguments to start <c>run</c> in the background and wait for its
    /// readiness notification, with <paramref name="options"/> before the program's.
    /// </summary>
    private string[] NotifyAwait(params string[] options) =>
        new[] { "--start", "--background", "--notify-await" }.Concat(options)
            .Concat(new[] { "--exec", ExampleDaemon.Program, "--", "run", "--log-file", _daemon.LogFile, "--port", _daemon.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) })
            .ToArray();

    /// <summary>
    /// Starts <c>run</c> as start-stop-daemon does for an init script, which writes the pid file
    /// itself, and waits until the daemon is ready (its log says so); returns its pid.
    /// </summary>
    private int StartWithStartStopDaemon(Launch launch, params string[] extra)
    {
        RequireTools();
        string program = launch == Launch.ReplacedProgramFile ? TestEnvironment.CopyProgram(ExampleDaemon.Program, _daemon.Folder) : ExampleDaemon.Program;
        string[] daemon = launch == Launch.DotnetHost
            ? new[] { "--exec", DotnetHost(), "--", program + ".dll" }
            : new[] { "--exec", program, "--" };
        string[] run = new[] { "run", "--log-file", _daemon.LogFile, "--port", _daemon.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(extra).ToArray();
        CommandResult started = _daemon.Exec(new[] { "--start", "--background", "--make-pidfile", "--pidfile", _daemon.PidFile }.Concat(daemon).Concat(run), null, StartStopDaemon);
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        Assert.That(ExampleDaemon.Eventually(() => File.Exists(_daemon.PidFile) && File.ReadAllText(_daemon.PidFile).EndsWith('\n'), TimeSpan.FromSeconds(30)), Is.True, "start-stop-daemon writes the pid file");
        int pid = _daemon.ReadPid();
        _daemon.Track(pid);
        Assert.That(_daemon.WaitForLog(": ready", TimeSpan.FromSeconds(30)), Is.True, _daemon.Log);
        if (launch == Launch.ReplacedProgramFile)
        {
            // An upgrade: a new file renamed over the program; the daemon runs the deleted one.
            File.Copy(program, program + ".new");
            File.Move(program + ".new", program, overwrite: true);
            Assert.That(new FileInfo($"/proc/{pid}/exe").LinkTarget, Is.EqualTo(program + " (deleted)"));
            _daemon.ProgramPath = program;
        }

        return pid;
    }

    /// <summary>start-stop-daemon's exit code for <c>--status</c>: 0 running, 1 dead with a pid file, 3 not running, 4 unknown.</summary>
    private int ToolStatus() => _daemon.Exec(new[] { "--status", "--pidfile", _daemon.PidFile }, null, StartStopDaemon).ExitCode;

    /// <summary>Runs <paramref name="call"/> after sourcing the LSB init functions, with $1 the pid file and $2 the program.</summary>
    private CommandResult Lsb(string call) =>
        _daemon.Exec(new[] { "-c", $". {InitFunctions}; {call}", "lsb", _daemon.PidFile, _daemon.ProgramPath }, null, "/bin/bash");

    /// <summary>The dotnet host on PATH, as an init script would name it.</summary>
    private static string DotnetHost() =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Select(dir => Path.Combine(dir, "dotnet")).FirstOrDefault(File.Exists)
        ?? throw new InconclusiveException("no dotnet on PATH");

    private static void RequireTools()
    {
        _ = TestEnvironment.RequireTool(StartStopDaemon);
        _ = TestEnvironment.RequireTool(InitFunctions);
    }
}
