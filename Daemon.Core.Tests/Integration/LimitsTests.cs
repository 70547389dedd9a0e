using System.Text.RegularExpressions;
using Mono.Unix.Native;

namespace Daemon.Core.Tests.Integration;

/// <summary>
/// Hard limits met by the example echo daemon: out of descriptors, a full accept queue at stop.
/// Each test is a row of docs/RELIABILITY.md.
/// </summary>
[TestFixture]
[Category("Integration")]
[NonParallelizable]
public sealed class LimitsTests : DaemonFixture
{
    private static readonly TimeSpan _patience = TimeSpan.FromSeconds(30);

    protected override string FolderLabel => "lim";

    [Test]
    public void OutOfDescriptors_PausesAccepting_ServesOpenConnections_ThenRecovers()
    {
        const int Clients = 100;
        // A limit 40 above what the daemon holds (the library keeps 8 for the runtime).
        (_, int pid) = StartUnderADescriptorLimit(headroom: 40);
        Assert.That(_daemon.Echo("warm again"), Is.EqualTo("warm again"));

        // The kernel completes each connect into the listener's queue, accepted or not.
        var clients = new ClientSockets(_daemon.Port, Clients, receiveTimeoutMilliseconds: 15_000);
        try
        {
            Assert.That(_daemon.WaitForLog("out of file descriptors", _patience), Is.True, _daemon.Log);
            HashSet<int> acceptedPorts = AcceptedPeerPorts();
            List<int> accepted = Enumerable.Range(0, Clients).Where(i => acceptedPorts.Contains(((IPEndPoint)clients[i].LocalEndPoint!).Port)).ToList();
            Assert.That(accepted, Has.Count.InRange(1, Clients - 1), "some clients were accepted before the limit, not all");

            foreach (int i in accepted)
            {
                clients[i].Send(Encoding.ASCII.GetBytes($"client-{i}\n"));
                Assert.That(Lines.ReadLine(clients[i]), Is.EqualTo($"client-{i}\n"), $"accepted client {i} is served at the limit\n{_daemon.Log}");
            }

            Assert.That(ExampleDaemon.IsAlive(pid), Is.True, _daemon.Log);
            // A busy machine may see a second episode (accepting resumed, then ran short again):
            // still one line when each begins and one when it ends, never one per failed accept.
            string log = _daemon.Log;
            Assert.That(ExampleDaemon.Count(log, "out of file descriptors"), Is.EqualTo(ExampleDaemon.Count(log, "accepting again after") + 1), log);

            clients.Dispose();
            Assert.That(ExampleDaemon.Eventually(() => TryEcho("after") == "after", _patience, pollMilliseconds: 50), Is.True, _daemon.Log);
            Assert.That(_daemon.Log, Does.Match(@"accepting again after \d+ ms \(\d+ pauses\)"));
            Assert.That(_daemon.Log, Does.Not.Contain("unhandled exception"));
            Assert.That(ExampleDaemon.IsAlive(pid), Is.True);
        }
        finally
        {
            clients.Dispose();
        }

        CommandResult stopped = _daemon.Run("stop");
        Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());
    }

    [Test]
    public void ClientsQueuedAtStop_EachGetTheirEcho_NoneAReset()
    {
        const int Clients = 300;
        int pid = _daemon.Start();
        Assert.That(_daemon.Echo("warm"), Is.EqualTo("warm"));

        // A stopped daemon accepts nothing: every connection below completes into the listener's
        // queue and stays there until the stop request, whatever the machine's speed.
        Assert.That(Syscall.kill(pid, Signum.SIGSTOP), Is.EqualTo(0));
        Assert.That(ExampleDaemon.Eventually(() => ExampleDaemon.State(pid) == 'T', _patience), Is.True, "the daemon is stopped");
        var clients = new ClientSockets(_daemon.Port, Clients, receiveTimeoutMilliseconds: 15_000);
        try
        {
            for (int i = 0; i < Clients; i++)
            {
                Assert.That(clients[i].Send(Encoding.ASCII.GetBytes($"client-{i}\n")), Is.EqualTo($"client-{i}\n".Length));
            }

            // stop sends SIGCONT right after its SIGTERM, so the daemon runs again only now,
            // with all of them in its queue.
            CommandResult stopped = _daemon.Run("stop");
            Assert.That(stopped.ExitCode, Is.EqualTo(0), stopped.ToString());

            var failures = new List<string>();
            for (int i = 0; i < Clients; i++)
            {
                try
                {
                    string echo = ExampleDaemon.ReadToEnd(clients[i]);
                    if (echo != $"client-{i}\n")
                    {
                        failures.Add($"client {i}: '{echo.Trim()}'");
                    }
                }
                catch (SocketException e)
                {
                    failures.Add($"client {i}: {e.SocketErrorCode}");
                }
            }

            Assert.That(failures, Is.Empty, $"{failures.Count} of {Clients} clients got no echo");
            Assert.That(_daemon.Log, Does.Contain("queued connection(s) after the stop request"));
        }
        finally
        {
            clients.Dispose();
        }
    }

    // ---- helpers -------------------------------------------------------------------------------------

    /// <summary>
    /// Starts the daemon under a descriptor limit <paramref name="headroom"/> above what it holds
    /// once it has served a client, whatever its runtime holds; that limit, and the daemon's pid.
    /// </summary>
    private (int Limit, int Pid) StartUnderADescriptorLimit(int headroom)
    {
        int first = _daemon.Start();
        Assert.That(_daemon.Echo("warm"), Is.EqualTo("warm"));
        int holds = Directory.GetFiles($"/proc/{first}/fd").Max(f => int.Parse(Path.GetFileName(f), CultureInfo.InvariantCulture)) + 1;
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
        int limit = holds + headroom;
        CommandResult started = _daemon.ExecUnderLimit($"-n {limit}", _daemon.ProgramPath, new[] { "start" }.Concat(_daemon.CommonOptions));
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        return (limit, _daemon.ReadPid());
    }

    /// <summary>The client ports of every connection the latest daemon logged as accepted.</summary>
    private HashSet<int> AcceptedPeerPorts() =>
        Regex.Matches(_daemon.Log[_daemon.Log.LastIndexOf(": starting", StringComparison.Ordinal)..], @"connection \d+ from 127\.0\.0\.1:(\d+)\n")
            .Select(m => int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture))
            .ToHashSet();

    private string? TryEcho(string text)
    {
        try
        {
            return _daemon.Echo(text);
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            return null;
        }
    }

}
