using System.Collections.Concurrent;
using Daemon.Handover;
using Daemon.Interop;
using Daemon.Logging;
using Daemon.PidFiles;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// Both ends of the control channel in this process: the test process holds a pid file naming
/// itself, runs a <see cref="HandoverServer"/> over a real listener, and plays next generations.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class HandoverServerTests
{
    private static readonly TimeSpan _patience = TimeSpan.FromSeconds(30);
    private string _folder = null!;
    private string _pidFile = null!;
    private IPidFileStore _ours = null!;
    private ListenerSet _listeners = null!;
    private StringWriter _logLines = null!;
    private HandoverServer _server = null!;
    private BlockingCollection<(int Pid, IReadOnlyCollection<string> Adopted)> _committed = null!;
    private BlockingCollection<int> _failed = null!;
    private readonly List<IDisposable> _peers = new();

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("handover-server");
        _pidFile = Path.Combine(_folder, "d.pid");
        // A process never sees its own POSIX lock: the pid file's word comes from a stand-in.
        var pidFiles = new Moq.Mock<IPidFileStore>();
        pidFiles.Setup(p => p.Inspect(_pidFile)).Returns(new PidFileState(PidFileKind.Locked, Environment.ProcessId, Environment.ProcessId, "", null));
        _ours = pidFiles.Object;
        _logLines = new StringWriter();
        var log = new DaemonLog("test", null, TextWriter.Synchronized(_logLines));
        _listeners = new ListenerSet();
        _ = _listeners.Listen("echo", new IPEndPoint(IPAddress.Loopback, 0), 16, log);
        _committed = new();
        _failed = new();
        _server = HandoverServer.Open(_pidFile, _listeners, log, Posix.GetEffectiveUid(), changesUser: false, (pid, adopted) => _committed.Add((pid, adopted)), pid => _failed.Add(pid))
            ?? throw new AssertionException("no channel: " + _logLines);
        _server.Serve();
    }

    [TearDown]
    public void TearDown()
    {
        _peers.ForEach(p => p.Dispose());
        _peers.Clear();
        _server.Dispose();
        _listeners.CloseAll();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void Handover_SendsTheListeners_AndDecidesOnlyOnTheSuccessorsConfirmation()
    {
        var into = new ListenerSet();
        Predecessor predecessor = Connect(into);
        Assert.That(predecessor.Pid, Is.EqualTo(Environment.ProcessId));
        Assert.That(into.InheritedCount, Is.EqualTo(1));
        Assert.That(_committed, Is.Empty, "nothing decided before the commit");

        Assert.That(predecessor.Commit(4242, ["echo"]), Is.True);
        Assert.That(_committed.TryTake(out var decided, _patience), Is.True, _logLines.ToString());
        Assert.That(decided.Pid, Is.EqualTo(Environment.ProcessId), "the peer the kernel names, not the pid it claims");
        Assert.That(decided.Adopted, Is.EqualTo(new[] { "echo" }));
        Assert.That(_failed, Is.Empty);
        into.CloseAll();
    }

    [Test]
    public void ASecondHandover_WaitsForTheFirst_AndGetsTheListenersOnceTheFirstGaveUp()
    {
        var first = new ListenerSet();
        Predecessor holder = Connect(first);
        var second = new ListenerSet();
        Task<Predecessor> waiting = Task.Run(() => Predecessor.Connect(_pidFile, second, null, _patience, _ours));
        Assert.That(waiting.Wait(TimeSpan.FromMilliseconds(300)), Is.False, "told BUSY, it asks again");

        holder.Dispose();   // the first next generation went away before committing
        first.CloseAll();
        Assert.That(_failed.TryTake(out int failed, _patience), Is.True, _logLines.ToString());
        Assert.That(failed, Is.EqualTo(Environment.ProcessId));
        Assert.That(waiting.Wait(_patience), Is.True, _logLines.ToString());
        _peers.Add(waiting.Result);
        Assert.That(second.InheritedCount, Is.EqualTo(1));
        second.CloseAll();
    }

    [Test]
    public void AStopDuringATurn_AbortsTheCommit_WithItsReason()
    {
        var into = new ListenerSet();
        Predecessor predecessor = Connect(into);
        _server.Refuse("it is stopping (SIGTERM)");

        DaemonException? e = Assert.Throws<DaemonException>(() => predecessor.Commit(4242, ["echo"]));
        Assert.That(e!.Message, Is.EqualTo($"pid {Environment.ProcessId} did not hand over: it is stopping (SIGTERM)"));
        Assert.That(_committed, Is.Empty);
        into.CloseAll();
    }

    [Test]
    public void ASilentPeer_DelaysNoOtherPeer()
    {
        Socket silent = ControlChannel.Connect(_pidFile, Environment.ProcessId, Environment.TickCount64 + 10_000) ?? throw new AssertionException("no channel");
        _peers.Add(silent);

        HandoverProbe probe = Predecessor.Probe(_pidFile, Environment.ProcessId, _patience);
        Assert.That(probe, Is.EqualTo(new HandoverProbe(HandoverProbeResult.Answers, 1)));
    }

    [Test]
    public void ASuccessorGoneBeforeItConfirmed_IsNotHandedOver_AndTheNextOneIs()
    {
        Socket raw = ControlChannel.Connect(_pidFile, Environment.ProcessId, Environment.TickCount64 + 10_000) ?? throw new AssertionException("no channel");
        Assert.That(HandoverProtocol.TrySend(raw, HandoverProtocol.Handover, "30000"), Is.True);
        byte[] buffer = new byte[4096];
        HandoverProtocol.WaitReadable(raw, Environment.TickCount64 + 30_000);
        Assert.That(Posix.ReceiveWithDescriptors((int)raw.Handle, buffer, 4, out int[] fds, out _), Is.GreaterThan(0));
        fds.ToList().ForEach(Posix.Close);
        Assert.That(HandoverProtocol.TrySend(raw, HandoverProtocol.Committed, "4242\necho"), Is.True);
        Assert.That(HandoverProtocol.Receive(raw, Environment.TickCount64 + 30_000).Kind, Is.EqualTo(HandoverProtocol.Ok));
        raw.Dispose();   // no DONE: killed, or it gave up

        Assert.That(_failed.TryTake(out _, _patience), Is.True, _logLines.ToString());
        Assert.That(_committed, Is.Empty, "never handed to a successor that did not confirm");
        Assert.That(_logLines.ToString(), Does.Contain("handover to pid ").And.Contain("did not complete (it went away before it confirmed); this daemon serves on"));

        var into = new ListenerSet();
        Assert.That(Connect(into).Commit(4243, ["echo"]), Is.True, "the next one is served");
        Assert.That(_committed.TryTake(out var decided, _patience), Is.True);
        Assert.That(decided.Pid, Is.EqualTo(Environment.ProcessId));
        into.CloseAll();
    }

    [Test]
    public void AProbe_SaysHowManyListenersWouldBeHandedOver()
    {
        Assert.That(Predecessor.Probe(_pidFile, Environment.ProcessId, _patience), Is.EqualTo(new HandoverProbe(HandoverProbeResult.Answers, 1)));
        Assert.That(Predecessor.Probe(_pidFile, Environment.ProcessId + 1, TimeSpan.FromSeconds(1)).Result, Is.EqualTo(HandoverProbeResult.NoChannel), "another pid's channel is not this one");
    }

    private Predecessor Connect(ListenerSet into)
    {
        Predecessor predecessor = Predecessor.Connect(_pidFile, into, null, _patience, _ours);
        _peers.Add(predecessor);
        return predecessor;
    }
}
