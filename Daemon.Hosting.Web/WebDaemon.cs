using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Daemon.Hosting.Web;

/// <summary>
/// Runs an ASP.NET Core <see cref="WebApplication"/> as a Daemon.NET daemon. <c>Program.cs</c>
/// keeps its <c>WebApplication.CreateBuilder(args)</c> (or <c>CreateSlimBuilder</c>), services
/// and <c>app.MapGet(...)</c>, inside a function that returns the app instead of running it:
/// <c>return new WebDaemon(args => { var builder = WebApplication.CreateBuilder(args); ...; return app; }).Main(args);</c>
/// </summary>
/// <remarks>
/// <para>Everything <see cref="HostedDaemon"/> does holds: the app is built and started in the
/// startup hook (a failure fails <c>start</c> with its message), <c>stop</c> stops it within the
/// stop timeout, <c>reload</c> reloads its configuration, the daemon owns the signals (no "Press
/// Ctrl+C to shut down"), the console logger writes single timestamped lines to the daemon's log
/// (or, to the systemd journal, single lines marked with their priority).
/// By default Microsoft.AspNetCore logs warnings only, as in the <c>dotnet new web</c> template's
/// appsettings.json, rather than a line per request.</para>
/// <para>Every TCP and Unix endpoint Kestrel is configured with, wherever it comes from
/// (<c>--urls</c>, <c>ASPNETCORE_URLS</c>, <c>Kestrel:Endpoints</c>, <c>ListenLocalhost</c>...),
/// is bound through the daemon's listeners, so <c>restart</c> hands it over to the next
/// generation and refuses no connection.</para>
/// <para>When it stops or hands over, the app stops accepting first (what is queued goes to the
/// next generation), then waits until every connection it accepted has had its first request
/// reach the app (or closed), for at most half of the stop timeout's budget; only then does
/// Kestrel stop, finishing the requests in flight with <c>Connection: close</c> and closing idle
/// keep-alive connections, which HTTP clients retry. So no request fails across a restart.</para>
/// </remarks>
public class WebDaemon : HostedDaemon
{
    /// <summary>
    /// Defaults below every configuration source, besides <see cref="HostedDaemon"/>'s: the
    /// <c>dotnet new web</c> template's level for ASP.NET Core, not a log line per request.
    /// </summary>
    private static readonly KeyValuePair<string, string?>[] _webDefaults =
    [
        new("Logging:LogLevel:Microsoft.AspNetCore", "Warning"),
    ];

    private readonly Func<string[], WebApplication>? _createApplication;
    private readonly Func<string[], IHostBuilder>? _createHostBuilder;
    private readonly ConnectionDrain _drain = new();
    private DaemonListenerFactory? _listeners;

    /// <summary>Creates a daemon, named after the program, that runs the app <paramref name="createApplication"/> builds.</summary>
    /// <param name="createApplication">Builds the app from the host's arguments (see <see cref="GetApplicationArguments"/>), without running it.</param>
    public WebDaemon(Func<string[], WebApplication> createApplication)
    {
        ArgumentNullException.ThrowIfNull(createApplication);
        _createApplication = createApplication;
    }

    /// <summary>Creates a daemon with the given name that runs the app <paramref name="createApplication"/> builds.</summary>
    /// <param name="name">The daemon's name, from which the default file names derive.</param>
    /// <param name="createApplication">Builds the app from the host's arguments, without running it.</param>
    public WebDaemon(string name, Func<string[], WebApplication> createApplication)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(createApplication);
        _createApplication = createApplication;
    }

    /// <summary>
    /// Creates a daemon, named after the program, whose web host comes from an <see cref="IHostBuilder"/>
    /// written in the style before .NET 6, such as
    /// <c>args => Host.CreateDefaultBuilder(args).ConfigureWebHostDefaults(web => web.UseStartup&lt;Startup&gt;())</c>:
    /// its Kestrel endpoints are handed over and drained as a <see cref="WebApplication"/>'s.
    /// </summary>
    /// <param name="createHostBuilder">Creates the host builder from the host's arguments (see <see cref="GetApplicationArguments"/>).</param>
    public WebDaemon(Func<string[], IHostBuilder> createHostBuilder)
    {
        ArgumentNullException.ThrowIfNull(createHostBuilder);
        _createHostBuilder = createHostBuilder;
    }

    /// <summary>Creates a daemon with the given name whose web host comes from an <see cref="IHostBuilder"/>.</summary>
    /// <param name="name">The daemon's name, from which the default file names derive.</param>
    /// <param name="createHostBuilder">Creates the host builder from the host's arguments.</param>
    public WebDaemon(string name, Func<string[], IHostBuilder> createHostBuilder)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(createHostBuilder);
        _createHostBuilder = createHostBuilder;
    }

    /// <summary>Creates a daemon, named after the program, whose app a subclass builds in <see cref="CreateApplication"/>.</summary>
    protected WebDaemon()
    {
    }

    /// <summary>Creates a daemon with the given name whose app a subclass builds in <see cref="CreateApplication"/>.</summary>
    /// <param name="name">The daemon's name, from which the default file names derive.</param>
    protected WebDaemon(string name)
        : base(name)
    {
    }

    /// <summary>
    /// The URLs Kestrel listens on (<c>--urls</c>), such as <c>http://127.0.0.1:8080</c>, separated
    /// by semicolons; passed to the app as its <c>--urls</c> argument. Default: none, so the app's
    /// own configuration decides (<c>ASPNETCORE_URLS</c>, <c>Kestrel:Endpoints</c>, its code), and
    /// without any, Kestrel's default <c>http://localhost:5000</c>.
    /// </summary>
    public string? Urls { get; set; }

    /// <summary>
    /// The arguments the app gets: <see cref="HostedDaemon.GetHostArguments"/>, and
    /// <c>--urls=</c><see cref="Urls"/> when it is set.
    /// </summary>
    /// <returns>The arguments, in the form the host's command-line configuration reads.</returns>
    public string[] GetApplicationArguments() => WithUrls(GetHostArguments());

    /// <summary>Adds <c>--urls</c> to <see cref="HostedDaemon"/>'s options; a subclass that adds its own calls this first.</summary>
    /// <param name="options">The option set to add to.</param>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        ArgumentNullException.ThrowIfNull(options);
        base.ConfigureOptions(options);
        options.Add("--urls", "URLS", "where to serve HTTP, such as http://127.0.0.1:8080 (';' between several); default: the app's configuration", v => Urls = OptionValues.NonEmpty(v), () => Urls);
    }

    /// <summary>
    /// Builds the app, inside the daemon's startup hook: the function given to the constructor, or
    /// a subclass's override. Build it here (<c>builder.Build()</c>), do not run it.
    /// </summary>
    /// <param name="args">The app's arguments: <see cref="GetApplicationArguments"/>.</param>
    /// <returns>The app, built and not started.</returns>
    protected virtual WebApplication CreateApplication(string[] args) =>
        _createApplication is not null
            ? _createApplication(args)
            : throw new NotImplementedException($"{GetType().Name} was made without an app factory and does not override CreateApplication");

    /// <summary>Builds the app with <see cref="CreateApplication"/>, or the host with the host builder given to the constructor.</summary>
    /// <param name="args">The host's arguments; <c>--urls</c> is added to them.</param>
    /// <returns>The app.</returns>
    protected sealed override IHost CreateHost(string[] args) =>
        _createHostBuilder is not null
            ? (_createHostBuilder(WithUrls(args)) ?? throw new InvalidOperationException("the host builder factory returned null")).Build()
            : CreateApplication(WithUrls(args));

    /// <summary>
    /// True: a web server's requests stand alone, so on a restart the next generation serves the
    /// queued connections at once while this one finishes its own (see <see cref="OnHostStoppingAsync"/>).
    /// </summary>
    protected override bool OverlapOnRestart => true;

    /// <summary>Puts Kestrel's endpoints on the daemon's listeners and notes each connection's first request.</summary>
    /// <param name="hostBuilder">The app's host, as it is built.</param>
    protected override void ConfigureBuildingHost(IHostBuilder hostBuilder)
    {
        ArgumentNullException.ThrowIfNull(hostBuilder);
        hostBuilder.ConfigureAppConfiguration((_, configuration) => configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = _webDefaults }));
        hostBuilder.ConfigureServices(services =>
        {
            // Registered last, so Kestrel binds TCP and Unix endpoints with it rather than the socket transport.
            services.AddSingleton<IConnectionListenerFactory>(provider =>
            {
                var listeners = new DaemonListenerFactory(
                    provider.GetRequiredService<IOptions<SocketTransportOptions>>().Value,
                    (name, endpoint) => Listen(name, endpoint),
                    _drain,
                    provider.GetRequiredService<ILoggerFactory>(),
                    line => Log(LogSeverity.Warning, line));
                provider.GetRequiredService<IHostApplicationLifetime>().ApplicationStarted.Register(listeners.WarnOfIPv6OnlyPorts);
                return _listeners = listeners;
            });
            services.AddSingleton<IStartupFilter>(new FirstRequestFilter(_drain));
        });
    }

    /// <summary>
    /// Stops accepting, then waits until every connection accepted has had a request reach the
    /// app or closed; Kestrel's stop then finishes the requests and closes what is idle.
    /// </summary>
    /// <param name="host">The app.</param>
    /// <param name="cancellationToken">Cancelled when the time for this step is up.</param>
    /// <returns>A task that completes when the step is done.</returns>
    protected override async Task OnHostStoppingAsync(IHost host, CancellationToken cancellationToken)
    {
        if (_listeners is { } listeners)
        {
            await listeners.StopAcceptingAsync(cancellationToken).ConfigureAwait(false);
        }

        await _drain.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    private string[] WithUrls(string[] args) => Urls is null ? args : [.. args, $"--urls={Urls}"];

    /// <summary>Notes, first in the app's pipeline, that a connection's request reached the app.</summary>
    private sealed class FirstRequestFilter(ConnectionDrain drain) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
        {
            app.Use(nextMiddleware => context =>
            {
                drain.Served(context.Connection.Id);
                return nextMiddleware(context);
            });
            next(app);
        };
    }
}
