using Daemon.Handover;
using Daemon.Logging;
using Daemon.PidFiles;
using Moq;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// A generation's side of a restart (<see cref="Generation"/>) through its seam: what it takes over,
/// commits and gives back, with the predecessor and the pid files played by mocks.
/// </summary>
[TestFixture]
public sealed class GenerationTests
{
    private const string PidPath = "/run/test.pid";
    private Mock<IHandoverSteps> _steps = null!;
    private Mock<IPredecessor> _predecessor = null!;
    private ListenerSet _listeners = null!;
    private StringWriter _log = null!;
    private PidFileSlot _slot = null!;
    private Generation _generation = null!;

    [SetUp]
    public void SetUp()
    {
        _steps = new Mock<IHandoverSteps>(MockBehavior.Strict);
        _predecessor = new Mock<IPredecessor>(MockBehavior.Strict);
        _predecessor.SetupGet(p => p.Pid).Returns(4242);
        _predecessor.Setup(p => p.Dispose());
        _listeners = new ListenerSet();
        _log = new StringWriter();
        _slot = new PidFileSlot();
        _generation = new Generation(PidPath, _listeners, new DaemonLog("test", null, _log), _steps.Object, _slot);
    }

    [TearDown]
    public void TearDown()
    {
        _generation.Dispose();
        _listeners.CloseAll();
    }

    [Test]
    public void AFreshStart_OwnsItsSocketFiles_AndCommitsNothing()
    {
        _generation.Commit();

        Assert.That(_generation.IsSuccessor, Is.False);
        Assert.That(_generation.OwnsSocketFiles, Is.True, "it bound them");
        Assert.That(_generation.Successor, Is.Zero);
    }

    [Test]
    public void ASuccessor_OwnsTheSocketFilesOnlyOnceCommitted_AndTellsWhatItAdopted()
    {
        IReadOnlyCollection<string>? told = null;
        _steps.Setup(s => s.ConnectToPredecessor(PidPath, _listeners, 65534u, TimeSpan.FromSeconds(30))).Returns(_predecessor.Object);
        _predecessor.Setup(p => p.Commit(Environment.ProcessId, It.IsAny<IReadOnlyCollection<string>>(), It.IsAny<bool>()))
            .Callback<int, IReadOnlyCollection<string>, bool>((_, adopted, _) => told = adopted)
            .Returns(true);
        var handedOver = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        handedOver.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        handedOver.Listen();
        var address = (IPEndPoint)handedOver.LocalEndPoint!;

        _generation.TakeListeners(65534u, TimeSpan.FromSeconds(30));
        _listeners.Inherit("echo", handedOver);
        _ = _listeners.Listen("echo", address, 16, new DaemonLog("test", null, _log));
        Assert.That(_generation.IsSuccessor, Is.True);
        Assert.That(_generation.OwnsSocketFiles, Is.False, "the running daemon's until the commit");

        _generation.Commit();

        Assert.That(_generation.OwnsSocketFiles, Is.True);
        Assert.That(told, Is.EqualTo(new[] { "echo" }));
        Assert.That(_log.ToString(), Does.Contain("taking over from pid 4242: "));
        _predecessor.Verify(p => p.Dispose(), Times.Never, "held until it has exited");

        _predecessor.Setup(p => p.WaitForExit(It.IsAny<TimeSpan>())).Returns(true);
        _generation.AwaitPredecessorExit(TimeSpan.FromSeconds(10), kill: false, CancellationToken.None);

        _predecessor.Verify(p => p.Dispose(), Times.Once);
        _predecessor.Verify(p => p.Kill(), Times.Never);
        Assert.That(_log.ToString(), Does.Contain("waiting for pid 4242 to exit: the main loop begins once it has").And.Contain("pid 4242 has exited"));
    }

    [Test]
    public void AwaitPredecessorExit_WaitsForNothing_BeforeACommit()
    {
        _steps.Setup(s => s.ConnectToPredecessor(PidPath, _listeners, null, TimeSpan.FromSeconds(30))).Returns(_predecessor.Object);
        _generation.TakeListeners(null, TimeSpan.FromSeconds(30));

        _generation.AwaitPredecessorExit(TimeSpan.FromSeconds(10), kill: true, CancellationToken.None);

        _predecessor.Verify(p => p.WaitForExit(It.IsAny<TimeSpan>()), Times.Never, "a takeover not committed leaves the running daemon as it was");
        _predecessor.Verify(p => p.Kill(), Times.Never);
    }

    [Test]
    public void APredecessorKilledInTheWindow_LeavesThisGenerationTheService_SaidAsAWarning()
    {
        _steps.Setup(s => s.ConnectToPredecessor(PidPath, _listeners, null, TimeSpan.FromSeconds(30))).Returns(_predecessor.Object);
        _predecessor.Setup(p => p.Commit(Environment.ProcessId, It.IsAny<IReadOnlyCollection<string>>(), It.IsAny<bool>())).Returns(false);

        _generation.TakeListeners(null, TimeSpan.FromSeconds(30));
        _generation.Commit();

        Assert.That(_generation.OwnsSocketFiles, Is.True);
        Assert.That(_log.ToString(), Does.Contain("warning: pid 4242 exited during the handover; this daemon serves on"));
    }

    [Test]
    public void APredecessorThatRefuses_FailsTheCommit_AndTheListenersStayItsOwn()
    {
        _steps.Setup(s => s.ConnectToPredecessor(PidPath, _listeners, null, TimeSpan.FromSeconds(30))).Returns(_predecessor.Object);
        _predecessor.Setup(p => p.Commit(Environment.ProcessId, It.IsAny<IReadOnlyCollection<string>>(), It.IsAny<bool>())).Throws(new DaemonException("pid 4242 did not hand over: it is stopping (SIGTERM)"));

        _generation.TakeListeners(null, TimeSpan.FromSeconds(30));
        Assert.That(() => _generation.Commit(), Throws.InstanceOf<DaemonException>().With.Message.EqualTo("pid 4242 did not hand over: it is stopping (SIGTERM)"));

        Assert.That(_generation.OwnsSocketFiles, Is.False, "never committed: the socket files are the running daemon's");
    }

    [Test]
    public void TakingThePidFileOver_HoldsTheNewFile()
    {
        var fresh = new Mock<IPidFile>(MockBehavior.Strict);
        _steps.Setup(s => s.ConnectToPredecessor(PidPath, _listeners, null, TimeSpan.FromSeconds(30))).Returns(_predecessor.Object);
        _steps.Setup(s => s.TakeOverPidFile(PidPath, Environment.ProcessId)).Returns(fresh.Object);

        _generation.TakeListeners(null, TimeSpan.FromSeconds(30));
        _generation.TakeOverPidFile();

        Assert.That(_slot.Current, Is.SameAs(fresh.Object));
    }

    [Test]
    public void WithoutAPidFile_ThereIsNoHandover()
    {
        using var generation = new Generation(null, _listeners, new DaemonLog("test", null, _log), _steps.Object, _slot);
        generation.Offer(0, changesUser: false);
        generation.Serve();
        generation.Refuse("it is stopping (SIGTERM)");

        Assert.That(() => generation.TakeListeners(null, TimeSpan.FromSeconds(1)), Throws.InvalidOperationException);
    }
}
