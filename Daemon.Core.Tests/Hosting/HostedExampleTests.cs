using System;
using System.IO;
using System.Text.RegularExpressions;
using Daemon.Core.Tests.Integration;
using NUnit.Framework;

namespace Daemon.Core.Tests.Hosting;

/// <summary>
/// The Generic Host example (a heartbeat BackgroundService under <c>HostedDaemon</c>) driven as
/// an administrator would, with its appsettings.json in the test's folder (--content-root).
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class HostedExampleTests
{
    private const string Name = "Daemon.Example.Hosted";
    private ExampleDaemon _daemon = null!;

    private string Settings => Path.Combine(_daemon.Folder, "appsettings.json");

    [SetUp]
    public void SetUp()
    {
        _daemon = new ExampleDaemon(Path.Combine(AppContext.BaseDirectory, Name), "hosted", takesPort: false);
        _daemon.ExtraOptions.AddRange(new[] { "--content-root", _daemon.Folder });
        WriteSettings("first", intervalMilliseconds: 100);
    }

    [TearDown]
    public void TearDown() => _daemon.Dispose();

    [Test]
    public void Start_Status_Stop_RunTheHostAsADaemon()
    {
        CommandResult started = _daemon.Run("start");
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int pid = _daemon.ReadPid();
        Assert.That(started.Output.Trim(), Is.EqualTo($"started (pid {pid})"));

        CommandResult status = _daemon.Run("status");
        Assert.That(status.ExitCode, Is.EqualTo(0), status.ToString());
        Assert.That(status.Output.Trim(), Is.EqualTo($"running (pid {pid})"));
        Assert.That(_daemon.WaitForLog("heartbeat 3: first"), Is.True, "the BackgroundService runs:\n" + _daemon.Log);

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
        Assert.That(stopped.Output.Trim(), Is.EqualTo($"stopped (pid {pid})"));
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(File.Exists(_daemon.PidFile), Is.False);

        string log = _daemon.Log;
        Assert.Multiple(() =>
        {
            Assert.That(log, Does.Contain($"info: Daemon.Hosting.HostedDaemon[1] ready (pid file {_daemon.PidFile})"), "ready, through ILogger");
            Assert.That(log, Does.Contain("info: Daemon.Hosting.HostedDaemon[1] stopping (SIGTERM)"), "stopping, through ILogger");
            Assert.That(log, Does.Contain("heartbeat service stopped after"), "the host stopped its services");
            Assert.That(log, Does.Contain($"{Name}[{pid}]: stopped (exit 0)"));
            Assert.That(log, Does.Not.Contain("Press Ctrl+C"), "ConsoleLifetime is not installed");
        });
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
        Assert.That(_daemon.Log, Does.Contain("info: Daemon.Hosting.HostedDaemon[1] reloading (SIGHUP)")
            .And.Contain("info: Daemon.Hosting.HostedDaemon[1] configuration reloaded"));
    }

    [Test]
    public void Reload_KeepsTheRunningConfiguration_WhenTheFileDoesNotParse()
    {
        _daemon.Start();
        File.WriteAllText(Settings, "{ \"Heartbeat\": { \"Message\": ");
        CommandResult reloaded = _daemon.Run("reload");
        Assert.That(reloaded.ExitCode, Is.EqualTo(0), reloaded.ToString());
        Assert.That(_daemon.WaitForLog("configuration not reloaded, the running one stays"), Is.True, _daemon.Log);

        int beats = Beats(_daemon.Log);
        Assert.That(_daemon.WaitForLog(log => Beats(log) >= beats + 2), Is.True, _daemon.Log);
        Assert.That(_daemon.Log, Does.Contain($"heartbeat {beats + 1}: first"), "still the old message");
        Assert.That(_daemon.Run("status").ExitCode, Is.EqualTo(0), "still running");
    }

    [Test]
    public void Stop_FinishesWithinTheStopTimeout_WhenAHostedServiceIsSlowToStop()
    {
        // A drain far longer than any run of this test; 5 s leaves the daemon 1 s past the host's
        // 4 s budget to exit, ten times what it takes on an idle machine (about 0.1 s).
        WriteSettings("slow", intervalMilliseconds: 100, drainMilliseconds: 600_000);
        int pid = _daemon.Start("--stop-timeout", "5");

        // stop itself fails (exit 1) when the daemon outlives its --stop-timeout: exit 0 is the
        // proof that it ended within the timeout, not after the drain, whatever the machine's speed.
        CommandResult stopped = _daemon.Run("stop", "--stop-timeout", "5");

        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString() + "\n" + _daemon.Log);
        Assert.That(stopped.Output, Is.EqualTo($"stopped (pid {pid})\n"), "stopped by itself, not killed");
        Assert.That(ExampleDaemon.IsAlive(pid), Is.False);
        Assert.That(_daemon.Log, Does.Contain("heartbeat drain of 600000 ms cut short by the shutdown timeout")
            .And.Contain("the host took longer than 4 s to stop: its services were cancelled")
            .And.Contain("stopped (exit 0)"));
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

    private void WriteSettings(string message, int intervalMilliseconds, int drainMilliseconds = 0) =>
        File.WriteAllText(Settings, $$"""
            {
              "Heartbeat": {
                "Message": "{{message}}",
                "IntervalMilliseconds": {{intervalMilliseconds}},
                "DrainMilliseconds": {{drainMilliseconds}}
              }
            }
            """);

    private static int Beats(string log) => Regex.Matches(log, @"heartbeat \d+: ").Count;
}
