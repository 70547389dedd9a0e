namespace Daemon.Core.Tests.Integration;

/// <summary>
/// Clients that each run a round (connect, ask, check the answer, close) in a loop until stopped or
/// two minutes pass: a round returns null when it was served right, else what went wrong. Every
/// failure is kept; an exception a round does not catch fails <see cref="Stop"/>.
/// </summary>
public sealed class ClientLoad : IDisposable
{
    private readonly CancellationTokenSource _stop = new(TimeSpan.FromMinutes(2));
    private readonly Task[] _clients;
    private readonly List<string> _failures = new();
    private int _successes;

    /// <summary>Starts <paramref name="clients"/> loops of <paramref name="round"/>(client, round number).</summary>
    public ClientLoad(int clients, Func<int, int, Task<string?>> round)
    {
        _clients = Enumerable.Range(0, clients).Select(c => Task.Run(() => Loop(c, round))).ToArray();
    }

    public int Successes => Volatile.Read(ref _successes);

    public List<string> Failures
    {
        get
        {
            lock (_failures)
            {
                return new(_failures);
            }
        }
    }

    /// <summary>
    /// Echo clients: each round connects, sends a line, reads its echo and closes; every refused
    /// connection, reset or wrong echo is a failure.
    /// </summary>
    public static ClientLoad Echo(int port, int clients) => new(clients, (client, round) => Task.FromResult(EchoRound(port, client, round)));

    /// <summary>True once <paramref name="count"/> more rounds succeeded.</summary>
    public bool WaitForSuccesses(int count)
    {
        int target = Successes + count;
        return ExampleDaemon.Eventually(() => Successes >= target || _stop.IsCancellationRequested, TimeSpan.FromSeconds(60)) && Successes >= target;
    }

    public void Stop()
    {
        _stop.Cancel();
        Task.WaitAll(_clients, TimeSpan.FromSeconds(60));
    }

    public void Dispose()
    {
        Stop();
        _stop.Dispose();
    }

    public override string ToString() => $"{Successes} served, {Failures.Count} failures: {string.Join("; ", Failures.Take(5))}";

    private static string? EchoRound(int port, int client, int round)
    {
        string line = $"client {client} round {round}\n";
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 30_000, SendTimeout = 30_000 };
            socket.Connect(IPAddress.Loopback, port);
            socket.Send(Encoding.ASCII.GetBytes(line));
            string echo = Lines.ReadLine(socket);
            return echo == line ? null : $"{line.Trim()}: got '{echo.Trim()}'";
        }
        catch (SocketException e)
        {
            return $"{line.Trim()}: {e.SocketErrorCode}";
        }
    }

    private async Task Loop(int client, Func<int, int, Task<string?>> round)
    {
        for (int i = 0; !_stop.IsCancellationRequested; i++)
        {
            if (await round(client, i) is string failure)
            {
                lock (_failures)
                {
                    _failures.Add(failure);
                }
            }
            else
            {
                Interlocked.Increment(ref _successes);
            }
        }
    }
}
