using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Daemon.Hosting;

namespace Daemon.Core.Tests.Hosting;

/// <summary>
/// The Generic Host example (a heartbeat BackgroundService under <c>HostedDaemon</c>) driven as
/// an administrator would, with its appsettings.json in the test's folder (--content-root).
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class HostedExampleTests : DaemonFixture
{
    private const string Name = "Daemon.Example.Hosted";
    private string Settings => Path.Combine(_daemon.Folder, "appsettings.json");

    [SetUp]
    public void SetUp()
    {
        _daemon.ExtraOptions.AddRange(new[] { "--content-root", _daemon.Folder });
        WriteSettings("first", intervalMilliseconds: 100);
    }

    protected override ExampleDaemon CreateDaemon() => ExampleDaemon.Hosted("hosted");

    [Test]
    public void Start_Status_Stop_RunTheHostAsADaemon()
    {
        int pid = _daemon.StartSayingSo();
        _daemon.AssertRunning(pid);
        Assert.That(_daemon.WaitForLog("heartbeat 3: first"), Is.True, "the BackgroundService runs:\n" + _daemon.Log);

        _daemon.StopSayingSo(pid);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);

        string log = _daemon.Log;
        Assert.Multiple(() =>
        {
            Assert.That(ExampleDaemon.Count(log, $"ready (pid file {_daemon.PidFile})"), Is.EqualTo(1), "once: the console logger leaves the daemon's own lines out");
            Assert.That(log, Does.Not.Contain(HostedDaemon.LoggerCategory));
            Assert.That(log, Does.Contain("heartbeat service stopped after"), "the host stopped its services");
            Assert.That(log, Does.Contain($"{Name}[{pid}]: stopped (exit 0)"));
            Assert.That(log, Does.Not.Contain("Press Ctrl+C"), "ConsoleLifetime is not installed");
        });
    }

    [Test]
    public void Log_HasOneTimestampedLinePerEntry_WithoutAnyLoggingSetUpInTheProgram()
    {
        // Program.cs configures no logging: HostedDaemon's defaults make the console logger's entries
        // single lines, timestamped as the daemon's own, with no colour codes.
        int pid = _daemon.Start();
        Assert.That(_daemon.WaitForLog("heartbeat 2: first"), Is.True, _daemon.Log);
        _daemon.Run("stop");

        const string timestamp = @"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d";
        string[] lines = _daemon.Log.TrimEnd('\n').Split('\n');
        Assert.That(lines, Has.Some.Match($"^{timestamp} info: Daemon.Example.Hosted.HeartbeatService\\[2\\] heartbeat 1: first$"), _daemon.Log);
        Assert.That(lines, Has.All.Match($"^{timestamp} ({Regex.Escape(Name)}\\[{pid}\\]: |info: )"), "every line starts with a timestamp: no entry spans two lines");
        Assert.That(_daemon.Log, Does.Not.Contain("\u001b["), "no colour codes in a file");
    }

    [Test]
    public void Reload_ReloadsConfiguration_OnlyWhenAsked()
    {
        _daemon.Start();
        Assert.That(_daemon.WaitForLog("heartbeat 1: first"), Is.True, _daemon.Log);

        WriteSettings("second", intervalMilliseconds: 100);
        int beats = Beats(_daemon.Log);
        // A watched file would be picked up within about 250 ms (the reload delay).
        Assert.That(_daemon.WaitForLog(log => Beats(log) >= beats + 6), Is.True, _daemon.Log);
        Assert.That(_daemon.Log, Does.Not.Contain(": second"), "the file is not watched: only reload applies it");

        CommandResult reloaded = _daemon.Run("reload");
        Assert.That(reloaded.ExitCode, Is.EqualTo(0), reloaded.ToString());
        Assert.That(_daemon.WaitForLog("heartbeat options changed: message 'second'"), Is.True, _daemon.Log);
        Assert.That(_daemon.WaitForLog(log => Regex.IsMatch(log, @"heartbeat \d+: second")), Is.True, _daemon.Log);
        Assert.That(_daemon.WaitForLog($"]: configuration reloaded\n"), Is.True, _daemon.Log);
        Assert.That(ExampleDaemon.Count(_daemon.Log, "reloading (SIGHUP)"), Is.EqualTo(1), "once, as a line of the daemon's own");
    }

    [Test]
    public void Reload_OfABrokenAppsettings_IsOneWarningLine_AndTheFixedFileApplies()
    {
        // A copy of the built program, with appsettings.json in its own folder: the default content root.
        string program = CopyOfTheProgram();
        string settings = Path.Combine(Path.GetDirectoryName(program)!, "appsettings.json");
        _daemon.ProgramPath = program;
        _daemon.ExtraOptions.Clear();
        WriteSettings(settings, "first", intervalMilliseconds: 100);
        int pid = _daemon.Start();
        Assert.That(_daemon.WaitForLog("heartbeat 1: first"), Is.True, _daemon.Log);

        File.WriteAllText(settings, "{ \"Heartbeat\": { \"Message\": ");
        CommandResult reloaded = _daemon.Run("reload");
        Assert.That(reloaded.ExitCode, Is.EqualTo(0), "the signal was delivered: " + reloaded);
        Assert.That(reloaded.Output, Is.EqualTo($"reloading (pid {pid})\n"));
        Assert.That(_daemon.WaitForLog("reload failed"), Is.True, _daemon.Log);

        int beats = Beats(_daemon.Log);
        Assert.That(_daemon.WaitForLog(log => Beats(log) >= beats + 2), Is.True, _daemon.Log);
        string log = _daemon.Log;
        string[] failures = log.Split('\n').Where(l => l.Contains("reload failed", StringComparison.Ordinal)).ToArray();
        Assert.That(failures, Has.Length.EqualTo(1), log);
        Assert.That(failures[0], Does.EndWith($"{Name}[{pid}]: warning: reload failed: cannot load {settings}, so the running configuration stays: "
            + "Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed. LineNumber: 0 | BytePositionInLine: 28."));
        CommandAssertions.AssertNoStackTrace(log);
        Assert.That(log, Does.Not.Contain("Exception"), "no exception's name either");
        Assert.That(log, Does.Contain($"heartbeat {beats + 1}: first"), "still the old message");
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(0), "still running");

        WriteSettings(settings, "fixed", intervalMilliseconds: 100);
        Assert.That(_daemon.Run("reload").ExitCode, Is.EqualTo(0));
        Assert.That(_daemon.WaitForLog(l => Regex.IsMatch(l, @"heartbeat \d+: fixed")), Is.True, _daemon.Log);
        Assert.That(ExampleDaemon.Count(_daemon.Log, "reload failed"), Is.EqualTo(1), "the good file reloads without a word of failure");
    }

    [Test]
    public void Stop_FinishesWithinTheStopTimeout_WhenAHostedServiceIsSlowToStop()
    {
        // A drain far longer than any run of this test; 10 s leaves the daemon 2 s past the host's
        // 8 s budget to exit, twenty times what it takes on an idle machine (about 0.1 s).
        WriteSettings("slow", intervalMilliseconds: 100, drainMilliseconds: 600_000);
        int pid = _daemon.Start("--stop-timeout", "10");

        // stop itself fails (exit 1) when the daemon outlives its --stop-timeout: exit 0 is the
        // proof that it ended within the timeout, not after the drain, whatever the machine's speed.
        CommandResult stopped = _daemon.Run("stop", "--stop-timeout", "10");

        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString() + "\n" + _daemon.Log);
        Assert.That(stopped.Output, Is.EqualTo($"stopped (pid {pid})\n"), "stopped by itself, not killed");
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(_daemon.Log, Does.Contain("heartbeat drain of 600000 ms cut short by the shutdown timeout")
            .And.Contain("the host took longer than 8 s to stop: its services were cancelled")
            .And.Contain("stopped (exit 0)"));
    }

    [Test]
    public void Restart_StartsTheNewServices_OnlyOnceTheOldOnesHaveEnded()
    {
        int old = _daemon.Start();
        Assert.That(_daemon.WaitForLog("heartbeat 2: first"), Is.True, _daemon.Log);
        WriteSettings("second", intervalMilliseconds: 100);

        CommandResult restarted = _daemon.Run("restart");

        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString() + "\n" + _daemon.Log);
        int next = _daemon.ReadPid();
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {next}; pid {old} handed over and exited)\n"));
        Assert.That(restarted.Error, Is.Empty);
        Assert.That(ExampleDaemon.IsAlive(old), Is.False, "gone when restart returns: one generation runs");
        Assert.That(_daemon.WaitForLog("heartbeat 2: second"), Is.True, _daemon.Log);
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));

        // Both generations write to one log: the old one's last line comes before the new one's first beat.
        string log = _daemon.Log;
        List<string> lines = [.. log.Split('\n')];
        int oldPrepared = lines.FindIndex(l => l.Contains($"{Name}[{next}]: taking over from pid {old}", StringComparison.Ordinal));
        int oldStopped = lines.FindIndex(l => l.Contains($"{Name}[{old}]: stopped (exit 0)", StringComparison.Ordinal));
        int newStarting = lines.FindLastIndex(l => l.Contains("heartbeat service starting", StringComparison.Ordinal));
        int lastOldBeat = lines.FindLastIndex(l => l.EndsWith(": first", StringComparison.Ordinal));
        int firstNewBeat = lines.FindIndex(l => l.EndsWith(": second", StringComparison.Ordinal));
        Assert.Multiple(() =>
        {
            Assert.That(oldPrepared, Is.GreaterThanOrEqualTo(0).And.LessThan(oldStopped), "the new one started up while the old one still ran:\n" + log);
            Assert.That(lastOldBeat, Is.LessThan(oldStopped));
            Assert.That(newStarting, Is.GreaterThan(oldStopped), "the new services start once the old process has exited");
            Assert.That(firstNewBeat, Is.GreaterThan(newStarting));
            Assert.That(lines.Count(l => l.Contains("heartbeat service starting", StringComparison.Ordinal)), Is.EqualTo(2));
        });
    }

    [Test]
    public void ASecondRestart_WhileTheFirstsGenerationWaitsForTheOldOne_HandsOverFromIt_NeverStopsIt()
    {
        (int old, Process restart) = RestartWaitingForTheOldOne();
        using Process first = restart;

        CommandResult second = _daemon.Run("restart");
        CommandResult firstResult = _daemon.Finish(first);

        Assert.That(firstResult.ExitCode, Is.EqualTo(0), firstResult.ToString());
        int middle = int.Parse(firstResult.Output.Split(' ', ';')[2], CultureInfo.InvariantCulture);
        Assert.That(firstResult.Output, Is.EqualTo($"restarted (pid {middle}; pid {old} handed over and exited)\n"));
        Assert.That(second.ExitCode, Is.EqualTo(0), second.ToString() + "\n" + _daemon.Log);
        Assert.That(second.Output, Is.EqualTo($"restarted (pid {_daemon.ReadPid()}; pid {middle} handed over and exited)\n"), "from the first one's generation, once it was ready");
        Assert.That(_daemon.Log, Does.Not.Contain("stopping (SIGTERM)"), "nobody was stopped by a signal");
        Assert.That(ExampleDaemon.Eventually(() => _daemon.ProcessesOfThisTest().Count == 1, TimeSpan.FromSeconds(60)), Is.True, "one daemon left");
    }

    [Test]
    public void Stop_WhileARestartsGenerationWaitsForTheOldOne_StopsBoth_Cleanly_AndTheRestartSaysSo()
    {
        (int old, Process launched) = RestartWaitingForTheOldOne();
        using Process restart = launched;
        int next = _daemon.ReadPid();

        CommandResult stopped = _daemon.Run("stop");
        CommandResult restarted = _daemon.Finish(restart);

        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString() + "\n" + _daemon.Log);
        Assert.That(stopped.Output, Is.EqualTo($"stopped (pid {next})\n"));
        Assert.That(restarted.AssertOneClearLine(1, _daemon.Log), Is.EqualTo(
            $"{Name}: restart failed after pid {old} had handed over, so nothing runs now: stopped by SIGTERM while waiting for the previous generation to exit; the main loop never began"));
        Assert.That(_daemon.Log, Does.Contain($"{Name}[{next}]: stopped (exit 0)"), "a stop of the service, not a failure: a unit would end inactive");
        Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(60)), Is.True, "the old one ends its drain and exits");
        Assert.That(_daemon.Log, Does.Contain($"{Name}[{old}]: stopped (exit 0)"));
        Assert.That(ExampleDaemon.Count(_daemon.Log, "heartbeat service starting"), Is.EqualTo(1), "the new services never started");
        Assert.That(File.Exists(_daemon.PidFile), Is.False);
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(ExitCodes.NotRunning));
    }

    [Test]
    public void Restart_WithABrokenAppsettings_FailsInOneLine_AndTheRunningWorkerGoesOn()
    {
        int old = _daemon.Start();
        Assert.That(_daemon.WaitForLog("heartbeat 1: first"), Is.True, _daemon.Log);
        File.WriteAllText(Settings, "{ \"Heartbeat\": { \"Message\": ");

        CommandResult restarted = _daemon.Run("restart");

        string line = restarted.AssertOneClearLine(1, _daemon.Log);
        Assert.That(line, Is.EqualTo($"{Name}: restart failed, pid {old} still runs: startup failed: Failed to load configuration from file '{Settings}'. "
            + "Expected depth to be zero at the end of the JSON payload. There is an open JSON object or array that should be closed. LineNumber: 0 | BytePositionInLine: 28."));
        CommandAssertions.AssertNoStackTrace(_daemon.Log);
        Assert.That(_daemon.ReadPid(), Is.EqualTo(old), "the pid file still names it");
        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(0), status.ToString());
        Assert.That(status.Output, Does.StartWith($"running (pid {old})"));
        int beats = Beats(_daemon.Log);
        Assert.That(_daemon.WaitForLog(log => Beats(log) >= beats + 2), Is.True, "it still beats:\n" + _daemon.Log);
        Assert.That(ExampleDaemon.Count(_daemon.Log, "heartbeat service starting"), Is.EqualTo(1), "no second set of services ever started");
        Assert.That(_daemon.Log, Does.Not.Contain($"{Name}[{old}]: stopping"));
    }

    [Test]
    public void Start_Fails_WhenHostedServiceThrows()
    {
        WriteSettings("never", intervalMilliseconds: 0);

        CommandResult started = _daemon.Run("start");

        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error.Trim(), Is.EqualTo($"{Name}: startup failed: Heartbeat:IntervalMilliseconds must be above 0, not 0"));
        Assert.That(started.Output, Is.Empty);
        Assert.That(File.Exists(_daemon.PidFile), Is.False, "no pid file left");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty, "no process left");
        Assert.That(_daemon.Log, Does.Contain("stopped (exit 1)"));
    }

    /// <summary>
    /// Starts the worker with a drain of 3 s, then a restart (not awaited) whose next generation
    /// has committed and waits that long for the old one to exit; the old pid and the restart.
    /// </summary>
    private (int Old, Process Restart) RestartWaitingForTheOldOne()
    {
        WriteSettings("first", intervalMilliseconds: 100, drainMilliseconds: 3000);
        int old = _daemon.Start();
        Process restart = _daemon.Launch(new[] { "restart" }.Concat(_daemon.CommonOptions));
        Assert.That(_daemon.WaitForLog($"waiting for pid {old} to exit"), Is.True, _daemon.Log);
        return (old, restart);
    }

    private void WriteSettings(string message, int intervalMilliseconds, int drainMilliseconds = 0) =>
        WriteSettings(Settings, message, intervalMilliseconds, drainMilliseconds);

    /// <summary>Writes the worker's appsettings.json at <paramref name="path"/>.</summary>
    internal static void WriteSettings(string path, string message, int intervalMilliseconds, int drainMilliseconds = 0) =>
        File.WriteAllText(path, $$"""
            {
              "Heartbeat": {
                "Message": "{{message}}",
                "IntervalMilliseconds": {{intervalMilliseconds}},
                "DrainMilliseconds": {{drainMilliseconds}}
              }
            }
            """);

    private static int Beats(string log) => Regex.Matches(log, @"heartbeat \d+: ").Count;

    /// <summary>The example's build output, copied into the test's folder; returns the copy's apphost.</summary>
    private string CopyOfTheProgram()
    {
        string built = Path.GetDirectoryName(ExampleDaemon.BuiltProgram(Name, Name))!;
        string copy = Path.Combine(_daemon.Folder, "program");
        foreach (string file in Directory.GetFiles(built, "*", SearchOption.AllDirectories))
        {
            string target = Path.Combine(copy, Path.GetRelativePath(built, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }

        // File.Copy keeps the mode: the apphost stays executable.
        return Path.Combine(copy, Name);
    }
}
