using Daemon.Interop;
using Daemon.Launching;
using Daemon.PidFiles;
using Daemon.Processes;
using Moq;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The launcher's reading of the readiness pipe, fed by hand. The "detach stage" is a real child
/// in a process group of its own (setsid sleep): when the launcher gives up it kills that stage
/// and its group, and nothing else.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class LauncherTests
{
    private static readonly TimeSpan _readyTimeout = TimeSpan.FromMilliseconds(300);
    private Process _stage = null!;
    private int _readEnd;
    private int _writeEnd;

    [SetUp]
    public void SetUp()
    {
        _stage = Process.Start(new ProcessStartInfo("/usr/bin/setsid", "/bin/sleep 600").WithoutDiagnostics())!;
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.StatusField(_stage.Id, "Name") == "sleep"), Is.True, "the stage runs sleep, in its own group");
        Assert.That(Posix.Pipe(out _readEnd, out _writeEnd, out int errno), Is.EqualTo(0), $"errno {errno}");
    }

    [TearDown]
    public void TearDown()
    {
        if (!_stage.HasExited)
        {
            _stage.Kill();
        }

        _stage.WaitForExit();
        _stage.Dispose();
        Posix.Close(_writeEnd);
    }

    [Test]
    public void OnceTheNewDaemonTakesThePidFileOver_TheLauncherWaitsPastItsReadyTimeout()
    {
        Send("PID 4242\nPROGRESS " + StageProtocol.TakingOver + "\n");
        Task late = Task.Run(() =>
        {
            Thread.Sleep(_readyTimeout * 3);
            Send("READY 4242\n");
        });

        LaunchResult result = Await();

        Assert.That((result.Outcome, result.Pid), Is.EqualTo((LaunchOutcome.Ready, 4242)), result.ToString());
        Assert.That(_stage.HasExited, Is.False, "nothing was killed");
        late.Wait();
    }

    [Test]
    public void BeforeThat_TheReadyTimeoutKillsTheStage()
    {
        Send("PID 4242\nPROGRESS binding\n");

        LaunchResult result = Await();

        Assert.That(result.Outcome, Is.EqualTo(LaunchOutcome.Failed), result.ToString());
        Assert.That(result.Error, Does.StartWith("the daemon was not ready within 0.3 s and was killed"));
        Assert.That(_stage.WaitForExit(60_000), Is.True, "the stage was killed");
    }

    private LaunchResult Await()
    {
        var processes = new Mock<IProcessTable>();
        processes.Setup(p => p.Open(It.IsAny<int>())).Returns((IProcessHandle?)null);
        var pidFiles = new Mock<IPidFileStore>();
        string? problem = null;
        pidFiles.Setup(p => p.TryRemoveStale(It.IsAny<string>(), out problem)).Returns(false);
        using var reader = new ReadinessReader(_readEnd);
        var request = new LaunchRequest("/nonexistent/d.pid", "/nonexistent/d.log", _readyTimeout, Array.Empty<int>(), TakeOver: true);
        return new ReexecLauncher(processes.Object, pidFiles.Object).AwaitReadiness(reader, request, _stage.Id);
    }

    private void Send(string lines) =>
        Assert.That(Posix.WriteAll(_writeEnd, Encoding.ASCII.GetBytes(lines), out int errno), Is.True, $"errno {errno}");
}
