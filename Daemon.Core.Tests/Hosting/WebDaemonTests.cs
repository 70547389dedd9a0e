using System.Net.Http;

namespace Daemon.Core.Tests.Hosting;

/// <summary>
/// <c>WebDaemon</c> (Daemon.Hosting.Web) with real programs: the web example (a
/// <c>WebApplication.CreateSlimBuilder</c> app whose <c>--port</c> is a <c>Listen</c> in code) and
/// the README's minimal API (<c>WebApplication.CreateBuilder</c>, configured by <c>--urls</c>, the
/// environment or <c>Kestrel:Endpoints</c>): every endpoint goes through the daemon's listeners,
/// and restarts under load fail no request.
/// </summary>
[TestFixture]
[Category("Integration")]
[Parallelizable(ParallelScope.Self)]
public sealed class WebDaemonTests
{
    private ExampleDaemon? _daemon;

    [TearDown]
    public void TearDown() => _daemon?.Dispose();

    /// <summary>The web example's apphost, built with the tests into its own folder.</summary>
    public static string WebExample => ExampleDaemon.BuiltProgram("Daemon.Example.Web", "Daemon.Example.Web");

    /// <summary>The README's web app written with an IHostBuilder, built with the tests.</summary>
    public static string WebHostBuilder => ExampleDaemon.BuiltProgram(Path.Combine("docs", "snippets", "WebHostBuilder"), "WebHostBuilder");

    /// <summary>The README's minimal API, built with the tests.</summary>
    public static string WebApi => ExampleDaemon.BuiltProgram(Path.Combine("docs", "snippets", "WebApi"), "WebApi");

    [Test]
    public void WebExample_RestartedTenTimesUnderLoad_FailsNoRequest()
    {
        _daemon = new ExampleDaemon(WebExample, "web", takesPort: true);
        RestartTenTimesUnderLoad(_daemon);
    }

    [Test]
    public void WebExample_AfterARestart_EndsItsConnectionsWithAFin_NotAReset()
    {
        // The old generation stops accepting without an abortive close of the listener, whose
        // SO_LINGER 0 every connection the next generation accepts would inherit: those would end
        // with a reset, dropping what was not sent yet, and "Broken pipe" for a client that writes.
        _daemon = new ExampleDaemon(WebExample, "web", takesPort: true);
        int first = _daemon.Start();
        Assert.That(_daemon.Run("restart").ExitCode, Is.EqualTo(0));
        Assert.That(ExampleDaemon.WaitUntilGone(first, TimeSpan.FromSeconds(30)), Is.True, "the old generation stopped");

        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 30_000 };
        client.Connect(IPAddress.Loopback, _daemon.Port);
        client.Send(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"));
        Assert.That(ExampleDaemon.ReadToEnd(client), Does.StartWith("HTTP/1.1 200 OK\r\n").And.Contain($"hello from pid {_daemon.ReadPid()}\n"));
        Assert.That(ServerClose.WaitForClose(client, TimeSpan.FromSeconds(30)), Is.EqualTo(ServerClose.Ending.Fin));
    }

    [Test]
    public void HostBuilderWebApp_RestartedUnderLoad_FailsNoRequest()
    {
        // The style before .NET 6: Host.CreateDefaultBuilder(args).ConfigureWebHostDefaults(...).
        _daemon = new ExampleDaemon(WebHostBuilder, "webhost", takesPort: false);
        int port = ExampleDaemon.FreePort();
        _daemon.ExtraOptions.AddRange(["--urls", $"http://127.0.0.1:{port}"]);
        RestartUnderLoad(_daemon, port, "Hello World!", restarts: 5);
        Assert.That(_daemon.Log, Does.Contain($"listening on 127.0.0.1:{port} (inherited as ").And.Not.Contain("cannot hand over"), _daemon.Log);
    }

    [Test]
    public void WebExample_LogsThroughTheDaemon_WithoutConsolePrompts()
    {
        _daemon = new ExampleDaemon(WebExample, "web", takesPort: true);
        int pid = _daemon.Start();

        Assert.That(Get(_daemon.Port), Is.EqualTo($"hello from pid {pid}\n"));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
        string log = _daemon.Log;
        Assert.That(log, Does.Contain($"Daemon.Example.Web[{pid}]: listening on 127.0.0.1:{_daemon.Port}\n"), "Kestrel's endpoint is the daemon's listener");
        Assert.That(log, Does.Contain($"info: Microsoft.Hosting.Lifetime[14] Now listening on: http://127.0.0.1:{_daemon.Port}"), "ASP.NET's lines are single, timestamped log lines");
        Assert.That(log, Does.Not.Contain("Ctrl+C").And.Not.Contain("Request starting"), "no console prompt, no line per request");
    }

    [TestCase("--urls")]
    [TestCase("ASPNETCORE_URLS")]
    [TestCase("Kestrel:Endpoints")]
    public void MinimalApi_ConfiguredEndpoint_IsHandedOverOnRestart(string configuredBy)
    {
        _daemon = new ExampleDaemon(WebApi, "webapi", takesPort: false);
        int port = ExampleDaemon.FreePort();
        string url = $"http://127.0.0.1:{port}";
        var environment = new Dictionary<string, string?>();
        var extra = new List<string>();
        switch (configuredBy)
        {
            case "--urls":
                extra.AddRange(new[] { "--urls", url });
                break;
            case "ASPNETCORE_URLS":
                environment["ASPNETCORE_URLS"] = url;
                break;
            default:
                environment["Kestrel__Endpoints__web__Url"] = url;
                break;
        }

        CommandResult started = _daemon.Exec(new[] { "start" }.Concat(_daemon.CommonOptions).Concat(extra), environment);
        Assert.That(started.ExitCode, Is.EqualTo(0), started.ToString());
        int first = _daemon.ReadPid();
        Assert.That(Get(port), Is.EqualTo("Hello World!"));

        CommandResult restarted = _daemon.Exec(new[] { "restart" }.Concat(_daemon.CommonOptions).Concat(extra), environment);
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        int second = _daemon.ReadPid();
        Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {second}; pid {first} hands over and drains)\n"), "a handover, not stop and start");
        Assert.That(_daemon.Log, Does.Contain($"WebApi[{second}]: listening on 127.0.0.1:{port} (inherited as "), _daemon.Log);
        Assert.That(Get(port), Is.EqualTo("Hello World!"));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    [Test]
    public void MinimalApi_Localhost_HandsOverBothLoopbackListeners()
    {
        // http://localhost:N is ListenLocalhost(N): 127.0.0.1 and [::1], two listeners.
        _daemon = new ExampleDaemon(WebApi, "webapi", takesPort: false);
        int port = ExampleDaemon.FreePort();
        int first = _daemon.Start("--urls", $"http://localhost:{port}");
        Assert.That(_daemon.Log, Does.Contain($"listening on 127.0.0.1:{port}\n").And.Contain($"listening on [::1]:{port}\n"), _daemon.Log);

        CommandResult restarted = _daemon.Run("restart", "--urls", $"http://localhost:{port}");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(_daemon.WaitForLog($"WebApi[{first}]: handing 2 listener(s) over to pid {_daemon.ReadPid()}"), Is.True, _daemon.Log);
        Assert.That(Get(port), Is.EqualTo("Hello World!"));
    }

    [Test]
    public void MinimalApi_AnyAddress_ServesBothFamilies_WhenBothAreListed_AndWarnsOtherwise()
    {
        // The daemon's Listen binds [::] IPv6 only, where Kestrel would bind it dual-stack: said in the log.
        _daemon = new ExampleDaemon(WebApi, "webapi", takesPort: false);
        int port = ExampleDaemon.FreePort();
        int first = _daemon.Start("--urls", $"http://*:{port}");
        Assert.That(_daemon.WaitForLog($"WebApi[{first}]: warning: [::]:{port} takes IPv6 clients only; for IPv4 ones too, listen on 0.0.0.0 as well (--urls \"http://0.0.0.0:{port};http://[::]:{port}\")\n"), Is.True, _daemon.Log);
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));

        string both = $"http://0.0.0.0:{port};http://[::]:{port}";
        int second = _daemon.Start("--urls", both);
        Assert.That(Get(port), Is.EqualTo("Hello World!"), "IPv4");
        CommandResult restarted = _daemon.Run("restart", "--urls", both);
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(_daemon.WaitForLog($"WebApi[{second}]: handing 2 listener(s) over to pid {_daemon.ReadPid()}"), Is.True, _daemon.Log);
        Assert.That(Get(port), Is.EqualTo("Hello World!"));
        Assert.That(ExampleDaemon.Count(_daemon.Log, "takes IPv6 clients only"), Is.EqualTo(1), "no warning when 0.0.0.0 is listed too");
    }

    [Test]
    public void MinimalApi_UnixSocket_IsHandedOver_AndRemovedAtStop()
    {
        _daemon = new ExampleDaemon(WebApi, "webapi", takesPort: false);
        string path = Path.Combine(_daemon.Folder, "web.sock");
        int first = _daemon.Start("--urls", $"http://unix:{path}");
        Assert.That(GetUnix(path), Does.StartWith("HTTP/1.1 200 OK\r\n").And.Contain("Hello World!"));

        CommandResult restarted = _daemon.Run("restart", "--urls", $"http://unix:{path}");
        Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
        Assert.That(_daemon.WaitForLog($"WebApi[{first}]: handing 1 listener(s) over to pid {_daemon.ReadPid()}"), Is.True, _daemon.Log);
        Assert.That(GetUnix(path), Does.StartWith("HTTP/1.1 200 OK\r\n").And.Contain("Hello World!"));
        Assert.That(_daemon.Run("stop").ExitCode, Is.EqualTo(0));
        Assert.That(File.Exists(path), Is.False, "the service stopped for good: its socket file goes");
    }

    [Test]
    public void MinimalApi_PortInUse_FailsStartWithOneLine()
    {
        _daemon = new ExampleDaemon(WebApi, "webapi", takesPort: false);
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        int port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        CommandResult started = _daemon.Run("start", "--urls", $"http://127.0.0.1:{port}");

        Assert.That(started.ExitCode, Is.EqualTo(1), started.ToString());
        Assert.That(started.Error, Does.StartWith("WebApi: ").And.Contain($"127.0.0.1:{port}").And.Contain("address already in use").IgnoreCase, started.ToString());
        Assert.That(started.Error.TrimEnd('\n'), Does.Not.Contain("\n"), "one line");
        Assert.That(_daemon.ProcessesOfThisTest(), Is.Empty);
    }

    /// <summary>
    /// 10 restarts under 8 clients that open a new connection per request and 2 keep-alive
    /// clients: every restart hands over, and no request fails.
    /// </summary>
    public static void RestartTenTimesUnderLoad(ExampleDaemon daemon) => RestartUnderLoad(daemon, daemon.Port, "hello from pid ", restarts: 10);

    /// <summary>
    /// <paramref name="restarts"/> restarts of a daemon serving <paramref name="port"/> (answers
    /// starting with <paramref name="bodyStart"/>) under the load of <see cref="RestartTenTimesUnderLoad"/>.
    /// </summary>
    public static void RestartUnderLoad(ExampleDaemon daemon, int port, string bodyStart, int restarts)
    {
        var pids = new List<int> { daemon.Start() };
        using var load = new HttpLoad(port, newConnectionClients: 8, keepAliveClients: 2, bodyStart: bodyStart);
        for (int i = 0; i < restarts; i++)
        {
            Assert.That(load.WaitForMore(50), Is.True, "requests are served before each restart: " + load);
            CommandResult restarted = daemon.Run("restart");
            Assert.That(restarted.ExitCode, Is.EqualTo(0), restarted.ToString());
            pids.Add(daemon.ReadPid());
            Assert.That(restarted.Output, Is.EqualTo($"restarted (pid {pids[^1]}; pid {pids[^2]} hands over and drains)\n"));
        }

        Assert.That(load.WaitForMore(50), Is.True, "and after: " + load);
        load.Stop();
        TestContext.Progress.WriteLine($"{Path.GetFileName(daemon.ProgramPath)}: {restarts} restarts under load: {load}");
        Assert.That(load.Failures, Is.Empty, load.ToString());
        Assert.That(pids.Distinct().Count(), Is.EqualTo(restarts + 1), "each restart is a new generation");
        foreach (int old in pids.Take(restarts))
        {
            Assert.That(ExampleDaemon.WaitUntilGone(old, TimeSpan.FromSeconds(30)), Is.True, $"pid {old} drained and exited");
        }

        Assert.That(daemon.Run("stop").ExitCode, Is.EqualTo(0));
    }

    private static string GetUnix(string path)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified);
        socket.Connect(new System.Net.Sockets.UnixDomainSocketEndPoint(path));
        socket.Send(System.Text.Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"));
        return ExampleDaemon.ReadToEnd(socket);
    }

    private static string Get(int port)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        return http.GetStringAsync(new Uri($"http://127.0.0.1:{port}/")).GetAwaiter().GetResult();
    }
}
