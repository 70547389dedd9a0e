using Daemon.Handover;
using Daemon.Interop;
using Daemon.Logging;
using Daemon.Serving;

namespace Daemon.Core.Tests.Unit;

/// <summary>
/// The connection server's drain policy (at stop, after a handover, at the deadline), its
/// descriptor back-off, and that it never shuts a listener down, on real loopback sockets.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class ConnectionServerTests
{
    private static readonly TimeSpan _patience = TimeSpan.FromSeconds(30);
    private readonly List<IDisposable> _owned = new();
    private StringWriter _buffer = null!;
    private TextWriter _lines = null!;
    private DaemonLog _log = null!;

    /// <summary>The log so far (the synchronized writer locks on itself while it writes).</summary>
    private string Log
    {
        get
        {
            lock (_lines)
            {
                return _buffer.ToString();
            }
        }
    }

    [SetUp]
    public void SetUp()
    {
        _buffer = new StringWriter();
        _lines = TextWriter.Synchronized(_buffer);
        _log = new DaemonLog("t", null, _lines);
    }

    [TearDown]
    public void TearDown()
    {
        _owned.ForEach(d => d.Dispose());
        _owned.Clear();
        _lines.Dispose();
    }

    [Test]
    public void Stop_AnswersClientsQueuedBeforeIt_AndEndsEachConnectionAfterWhatItsClientSent()
    {
        Socket listener = NewListener();
        // Connected and sent before the server runs: all of them wait in the listener's queue.
        var queued = new List<Socket>();
        for (int i = 0; i < 20; i++)
        {
            Socket client = Connect(listener);
            client.Send(Encoding.ASCII.GetBytes($"queued-{i}\n"));
            queued.Add(client);
        }

        using var stopping = new CancellationTokenSource();
        stopping.Cancel();
        Task run = NewServer(listener, handedOver: false, grace: _patience).RunAsync(stopping.Token);

        for (int i = 0; i < queued.Count; i++)
        {
            Assert.That(ExampleDaemon.ReadToEnd(queued[i]), Is.EqualTo($"queued-{i}\n"), $"client {i}: its echo, then end-of-file\n{Log}");
        }

        Assert.That(run.Wait(_patience), Is.True, Log);
        Assert.That(Log, Does.Contain("accepted 20 queued connection(s) after the stop request"));
        Assert.That(Log, Does.Not.Contain("drain deadline"), "each connection ended once its client's input was read, not at the deadline");
    }

    [Test]
    public void Stop_EndsAQuietOpenConnection_AfterAnsweringIt()
    {
        Socket listener = NewListener();
        using var stopping = new CancellationTokenSource();
        Task run = NewServer(listener, handedOver: false, grace: _patience).RunAsync(stopping.Token);
        Socket client = Connect(listener);
        Assert.That(Lines.EchoOn(client, "before"), Is.EqualTo("before"));

        stopping.Cancel();

        Assert.That(ExampleDaemon.ReadToEnd(client), Is.Empty, "end-of-file: the stop ended the quiet connection");
        Assert.That(run.Wait(_patience), Is.True, Log);
        Assert.That(Log, Does.Contain("draining 1 connection(s)").And.Not.Contain("drain deadline"));
    }

    [Test]
    public void Stop_EndsEveryQuietConnectionWithEndOfFile_NeverAReset()
    {
        // At stop each connection's input is ended from the drain while its handler, woken by that,
        // closes the socket: a close that met the shutdown still under way was a reset (.NET
        // disconnects a socket it closes under another thread's call). A race: before the fix this
        // test saw it in 1 run of 25 here, the queued-clients test above in 4.
        Socket listener = NewListener();
        using var stopping = new CancellationTokenSource();
        Task run = NewServer(listener, handedOver: false, grace: _patience).RunAsync(stopping.Token);
        var clients = Enumerable.Range(0, 100).Select(_ => Connect(listener)).ToList();
        for (int i = 0; i < clients.Count; i++)
        {
            Assert.That(Lines.EchoOn(clients[i], $"client-{i}"), Is.EqualTo($"client-{i}"));
        }

        stopping.Cancel();

        var resets = new List<int>();
        for (int i = 0; i < clients.Count; i++)
        {
            try
            {
                Assert.That(ExampleDaemon.ReadToEnd(clients[i]), Is.Empty, $"client {i}");
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                resets.Add(i);
            }
        }

        Assert.That(resets, Is.Empty, "clients whose connection was reset instead of ended");
        Assert.That(run.Wait(_patience), Is.True, Log);
        Assert.That(Log, Does.Contain("draining 100 connection(s)").And.Not.Contain("drain deadline"));
    }

    [Test]
    public void AfterAHandover_TheQueueIsTheSuccessors_TheListenerIsNotShutDown_AndOpenConnectionsAreServedUntilTheirClientsClose()
    {
        Socket listener = NewListener();
        EndPoint address = listener.LocalEndPoint!;
        // The successor's descriptor of the same socket, as SCM_RIGHTS would give it.
        var successor = Own(new Socket(new SafeSocketHandle(Posix.Duplicate((int)listener.Handle), ownsHandle: true)));
        using var stopping = new CancellationTokenSource();
        Task run = NewServer(listener, handedOver: true, grace: _patience).RunAsync(stopping.Token);
        Socket old = Connect(listener);
        Assert.That(Lines.EchoOn(old, "before"), Is.EqualTo("before"));

        stopping.Cancel();
        Assert.That(ExampleDaemon.Eventually(() => Log.Contains("handed over: the next generation accepts from here", StringComparison.Ordinal), _patience), Is.True, Log);

        // Queued after the handover: the successor's to accept, on a socket that still listens.
        Socket late = Connect(address);
        using Task<Socket> accepting = successor.AcceptAsync();
        Assert.That(accepting.Wait(_patience), Is.True, "the successor accepts on the shared socket");
        Own(accepting.Result);
        Assert.That(ExampleDaemon.Eventually(() => listener.SafeHandle.IsClosed, _patience), Is.True, "the old generation closed its own descriptor of the listener");

        // The old connection is still served, however long its client stayed silent.
        Assert.That(old.Poll(1_000_000, SelectMode.SelectRead), Is.False, "no end-of-file while the client is quiet after a handover");
        Assert.That(Lines.EchoOn(old, "after"), Is.EqualTo("after"));
        Assert.That(run.IsCompleted, Is.False, "still serving the old connection");

        old.Shutdown(SocketShutdown.Send);
        Assert.That(ExampleDaemon.ReadToEnd(old), Is.Empty);
        Assert.That(run.Wait(_patience), Is.True, Log);
        Assert.That(Log, Does.Not.Contain("queued connection(s) after the stop request"), "the queue was left to the successor");
        Assert.That(Log, Does.Not.Contain("drain deadline"));
        GC.KeepAlive(late);
    }

    [Test]
    public void DrainDeadline_ClosesAConnectionWhoseClientStaysSilent_AndFiresTheHandlersToken()
    {
        Socket listener = NewListener();
        var tokenAtTheEnd = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stopping = new CancellationTokenSource();
        Task run = NewServer(listener, handedOver: true, grace: TimeSpan.FromSeconds(1), handler: async (client, closeNow) =>
        {
            try
            {
                await Echo(client, closeNow);
            }
            finally
            {
                tokenAtTheEnd.TrySetResult(closeNow.IsCancellationRequested);
            }
        }).RunAsync(stopping.Token);
        Socket silent = Connect(listener);
        Assert.That(Lines.EchoOn(silent, "once"), Is.EqualTo("once"));

        stopping.Cancel();

        Assert.That(ReadToEndOrReset(silent), Is.True, "the silent connection is closed at the deadline");
        Assert.That(tokenAtTheEnd.Task.Wait(_patience), Is.True, "the handler ended");
        Assert.That(tokenAtTheEnd.Task.Result, Is.True, "its token had fired");
        Assert.That(run.Wait(_patience), Is.True, Log);
        Assert.That(Log, Does.Contain("drain deadline: closing the 1 connection(s) still open"));
    }

    [Test]
    public void ListenerNotHandedOver_IsDrainedLikeAtStop_WhileTheOneHandedOverIsLeftToTheSuccessor()
    {
        var set = new ListenerSet();
        Socket adopted = set.Listen("adopted", new IPEndPoint(IPAddress.Loopback, 0), 64, _log);
        Socket left = set.Listen("left", new IPEndPoint(IPAddress.Loopback, 0), 64, _log);
        _owned.Add(new Disposer(set.CloseAll));

        set.MarkHandedOver(new[] { "adopted" });

        Assert.That(set.IsHandedOver(adopted), Is.True);
        Assert.That(set.IsHandedOver(left), Is.False, "the successor did not take it: still ours");
        Assert.That(Mono.Unix.Native.Syscall.fcntl((int)adopted.Handle, Mono.Unix.Native.FcntlCommand.F_GETFD) & 1, Is.EqualTo(0), "shared: close-on-exec cleared, so closing it never shuts it down");
        Assert.That(Mono.Unix.Native.Syscall.fcntl((int)left.Handle, Mono.Unix.Native.FcntlCommand.F_GETFD) & 1, Is.EqualTo(1), "still ours alone");

        // Clients queued on the listener the successor did not take, which already sent.
        var queued = new List<Socket>();
        for (int i = 0; i < 10; i++)
        {
            Socket client = Connect(left);
            client.Send(Encoding.ASCII.GetBytes($"left-{i}\n"));
            queued.Add(client);
        }

        using var stopping = new CancellationTokenSource();
        stopping.Cancel();
        Task run = NewServer(left, handedOver: () => set.IsHandedOver(left), grace: _patience).RunAsync(stopping.Token);

        for (int i = 0; i < queued.Count; i++)
        {
            Assert.That(ExampleDaemon.ReadToEnd(queued[i]), Is.EqualTo($"left-{i}\n"), $"client {i} is answered, not reset\n{Log}");
        }

        Assert.That(run.Wait(_patience), Is.True, Log);
        Assert.That(Log, Does.Contain("accepted 10 queued connection(s) after the stop request").And.Not.Contain("handed over"));
    }

    [Test]
    public void OutOfDescriptors_PausesAccepting_ServesTheOpenConnection_AndResumesWhenItCloses()
    {
        Socket listener = NewListener();
        Socket first = Connect(listener);
        // Room for exactly one connection above the reserve: each open one takes the lowest free
        // descriptor. Counted from the server's open connections, not measured, as every thread of
        // this test process (the runtime's too) moves the real number (LimitsTests measures it).
        const int Limit = 100;
        using var stopping = new CancellationTokenSource();
        var server = new ConnectionServer(listener, Echo, _log, _patience, () => false, Limit, open => Limit - AcceptBackoff.Reserve - 1 + open);
        Task run = server.RunAsync(stopping.Token);

        Assert.That(Lines.EchoOn(first, "first"), Is.EqualTo("first"));
        Socket second = Connect(listener);
        second.Send(Encoding.ASCII.GetBytes("second\n"));
        Assert.That(ExampleDaemon.Eventually(() => Log.Contains("out of file descriptors", StringComparison.Ordinal), _patience), Is.True, Log);
        Assert.That(Lines.EchoOn(first, "still served"), Is.EqualTo("still served"), "the open connection is served while accepting pauses");
        Assert.That(second.Poll(200_000, SelectMode.SelectRead), Is.False, "the second waits in the queue, unanswered");

        first.Shutdown(SocketShutdown.Send);
        Assert.That(ExampleDaemon.ReadToEnd(first), Is.Empty);

        byte[] echo = new byte[64];
        second.ReceiveTimeout = (int)_patience.TotalMilliseconds;
        int n = second.Receive(echo);
        Assert.That(Encoding.ASCII.GetString(echo, 0, n), Is.EqualTo("second\n"), "accepted once the first gave its descriptor back");
        Assert.That(ExampleDaemon.Count(Log, "out of file descriptors"), Is.EqualTo(1), "one line when the episode began, not one per pause\n" + Log);

        stopping.Cancel();
        Assert.That(run.Wait(_patience), Is.True, Log);
    }

    // ---- helpers -------------------------------------------------------------------------------------

    private ConnectionServer NewServer(Socket listener, bool handedOver, TimeSpan grace, long? descriptorLimit = null, Func<Socket, CancellationToken, Task>? handler = null) =>
        NewServer(listener, () => handedOver, grace, descriptorLimit, handler);

    private ConnectionServer NewServer(Socket listener, Func<bool> handedOver, TimeSpan grace, long? descriptorLimit = null, Func<Socket, CancellationToken, Task>? handler = null) =>
        new(listener, handler ?? Echo, _log, grace, handedOver, descriptorLimit);

    /// <summary>The echo example's handler: what the client sends comes back, until its input ends.</summary>
    private static async Task Echo(Socket client, CancellationToken closeNow)
    {
        byte[] buffer = new byte[4096];
        int n;
        while ((n = await client.ReceiveAsync(buffer, SocketFlags.None, closeNow)) > 0)
        {
            await client.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, closeNow);
        }
    }

    private Socket NewListener()
    {
        var listener = Own(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(128);
        return listener;
    }

    private Socket Connect(Socket listener) => Connect(listener.LocalEndPoint!);

    private Socket Connect(EndPoint address)
    {
        var client = Own(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)_patience.TotalMilliseconds });
        client.Connect(address);
        return client;
    }

    /// <summary>True when the peer closed: end-of-file, or a reset for a close with unread bytes.</summary>
    private static bool ReadToEndOrReset(Socket client)
    {
        try
        {
            return ExampleDaemon.ReadToEnd(client) is { };
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    private T Own<T>(T disposable)
        where T : IDisposable
    {
        _owned.Add(disposable);
        return disposable;
    }

    private sealed class Disposer(Action dispose) : IDisposable
    {
        public void Dispose() => dispose();
    }
}
