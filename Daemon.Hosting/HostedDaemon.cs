using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Daemon.Hosting;

/// <summary>
/// Runs a .NET Generic Host as a Daemon.NET daemon, so that a program made of hosted services
/// (<see cref="BackgroundService"/>, <see cref="IHostedService"/>) answers
/// <c>start|stop|restart|status|reload|run</c>. <c>Program.cs</c> is then one statement:
/// <c>return new HostedDaemon(builder => builder.Services.AddHostedService&lt;Worker&gt;()).Main(args);</c>
/// </summary>
/// <remarks>
/// <para>The host is built, and its options registered with <c>ValidateOnStart</c> checked, in the
/// startup hook; it is started (every hosted service's <c>StartAsync</c>) in the activation hook,
/// before the daemon is declared ready: a bad configuration or a hosted service whose
/// <c>StartAsync</c> throws makes <c>start</c> fail with its message, and no process is left. On a
/// <c>restart</c>, the next generation builds and checks its host while the running one still
/// works, and starts it only once the running one has stopped: a broken configuration leaves the
/// running one as it was, and two generations' services never run at once.</para>
/// <para>SIGTERM, SIGINT or SIGQUIT stops the host within <see cref="DaemonOptions.StopTimeout"/>;
/// so does a call to <see cref="IHostApplicationLifetime.StopApplication"/> from the application.
/// A <see cref="BackgroundService"/> that failed makes the daemon exit with code 1.</para>
/// <para>SIGHUP (<c>reload</c>) reloads the host's <see cref="IConfigurationRoot"/>, so that
/// <c>IOptionsMonitor</c> and change tokens see the new values. Configuration files are not
/// watched: a daemon reloads when its administrator says so.</para>
/// <para>Daemon.NET owns the signals: the host gets a lifetime that does nothing in place of
/// ConsoleLifetime (or SystemdLifetime), whose own SIGTERM handler would stop the host behind the
/// daemon's back.</para>
/// <para>Logging: unless the program's configuration or code says otherwise, the console logger,
/// whose output is the daemon's log, writes one line per entry, timestamped like the daemon's own
/// lines, without colour codes; when that output is the systemd journal (<c>run</c> in a unit,
/// without <c>--log-file</c>), it writes each entry's priority instead of a timestamp (the console
/// logger's <c>systemd</c> formatter). The daemon's lines, from <c>ready</c> on, also go to the host's
/// <see cref="ILogger"/> under the category <see cref="LoggerCategory"/> at the level of their
/// severity, for every provider but the console one (the log has them already).</para>
/// <para>The host's content root, where it looks for <c>appsettings.json</c>, is the program's
/// folder (or <c>--content-root</c>): a daemon's working directory is <c>/</c>.</para>
/// </remarks>
public class HostedDaemon : DaemonBase
{
    /// <summary>The logger category of the lifecycle lines.</summary>
    public const string LoggerCategory = "Daemon.Hosting.HostedDaemon";

    private static readonly Action<ILogger, string, Exception?> _information = LifecycleLine(LogLevel.Information);
    private static readonly Action<ILogger, string, Exception?> _warning = LifecycleLine(LogLevel.Warning);
    private static readonly Action<ILogger, string, Exception?> _error = LifecycleLine(LogLevel.Error);

    /// <summary>
    /// The host's logging defaults, as configuration below every other source (appsettings.json,
    /// the environment, the command line and code all win): the console logger, whose output is
    /// the daemon's log, writes one line per entry, timestamped like the daemon's own lines and
    /// without colour codes, and leaves out this class's lines, which that log has already.
    /// </summary>
    private static readonly KeyValuePair<string, string?>[] _loggingDefaults =
    [
        // Without a formatter's name, the console logger ignores FormatterOptions for older settings.
        new("Logging:Console:FormatterName", "simple"),
        new("Logging:Console:FormatterOptions:SingleLine", "true"),
        new("Logging:Console:FormatterOptions:TimestampFormat", "yyyy-MM-dd'T'HH:mm:ss.fffzzz "),
        new("Logging:Console:FormatterOptions:ColorBehavior", "Disabled"),
        new($"Logging:Console:LogLevel:{LoggerCategory}", "None"),
    ];

    /// <summary>
    /// The defaults when the console logger's output is the systemd journal (<c>run</c> in a unit,
    /// no <c>--log-file</c>): its <c>systemd</c> formatter, one line per entry starting with the
    /// entry's priority (<c>&lt;4&gt;</c> for a warning), no timestamp of its own (the journal
    /// stamps each line), so <c>journalctl -p warning</c> finds the warnings.
    /// </summary>
    private static readonly KeyValuePair<string, string?>[] _journalLoggingDefaults =
    [
        new("Logging:Console:FormatterName", "systemd"),
        new($"Logging:Console:LogLevel:{LoggerCategory}", "None"),
    ];

    private readonly Action<HostApplicationBuilder>? _configure;
    private readonly Func<string[], IHostBuilder>? _createHostBuilder;
    private IHost? _built;
    private volatile IHost? _host;
    private volatile ILogger? _logger;

    /// <summary>
    /// Creates a daemon, named after the program, whose host is a <see cref="HostApplicationBuilder"/>
    /// that <paramref name="configure"/> fills in (services, logging, configuration).
    /// </summary>
    /// <param name="configure">Adds the hosted services and whatever else the host needs.</param>
    public HostedDaemon(Action<HostApplicationBuilder> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _configure = configure;
    }

    /// <summary>Creates a daemon with the given name whose host <paramref name="configure"/> fills in.</summary>
    /// <param name="name">The daemon's name, from which the default file names derive.</param>
    /// <param name="configure">Adds the hosted services and whatever else the host needs.</param>
    public HostedDaemon(string name, Action<HostApplicationBuilder> configure)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(configure);
        _configure = configure;
    }

    /// <summary>
    /// Creates a daemon, named after the program, whose host comes from an <see cref="IHostBuilder"/>,
    /// such as <c>args => Host.CreateDefaultBuilder(args).ConfigureServices(...)</c>.
    /// </summary>
    /// <param name="createHostBuilder">Creates the host builder from the host's arguments.</param>
    public HostedDaemon(Func<string[], IHostBuilder> createHostBuilder)
    {
        ArgumentNullException.ThrowIfNull(createHostBuilder);
        _createHostBuilder = createHostBuilder;
    }

    /// <summary>Creates a daemon with the given name whose host comes from an <see cref="IHostBuilder"/>.</summary>
    /// <param name="name">The daemon's name, from which the default file names derive.</param>
    /// <param name="createHostBuilder">Creates the host builder from the host's arguments.</param>
    public HostedDaemon(string name, Func<string[], IHostBuilder> createHostBuilder)
        : base(name)
    {
        ArgumentNullException.ThrowIfNull(createHostBuilder);
        _createHostBuilder = createHostBuilder;
    }

    /// <summary>
    /// Creates a daemon, named after the program, whose host a subclass builds in
    /// <see cref="CreateHost"/> (such as a <c>WebApplication</c>).
    /// </summary>
    protected HostedDaemon()
    {
    }

    /// <summary>Creates a daemon with the given name whose host a subclass builds in <see cref="CreateHost"/>.</summary>
    /// <param name="name">The daemon's name, from which the default file names derive.</param>
    protected HostedDaemon(string name)
        : base(name)
    {
    }

    /// <summary>
    /// The host's content root, where <c>appsettings.json</c> is looked for (<c>--content-root</c>).
    /// Default: the program's folder, <see cref="AppContext.BaseDirectory"/>.
    /// </summary>
    public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

    /// <summary>
    /// The host's environment, such as <c>Development</c> (<c>--environment</c>). Default: none,
    /// so the host reads <c>DOTNET_ENVIRONMENT</c> and otherwise uses <c>Production</c>.
    /// </summary>
    public string? EnvironmentName { get; set; }

    /// <summary>The running host's services, for a subclass's <see cref="OnReload"/>; null before startup.</summary>
    protected IServiceProvider? Services => _host?.Services;

    /// <summary>
    /// The arguments the host builder gets: <c>--contentRoot=</c><see cref="ContentRootPath"/>,
    /// <c>--hostBuilder:reloadConfigOnChange=false</c>, and <c>--environment=</c><see cref="EnvironmentName"/>
    /// when it is set. The daemon's own command line is not passed on.
    /// </summary>
    /// <returns>The arguments, in the form the host's command-line configuration reads.</returns>
    public string[] GetHostArguments()
    {
        var args = new List<string> { $"--contentRoot={ContentRootPath}", "--hostBuilder:reloadConfigOnChange=false" };
        if (EnvironmentName is not null)
        {
            args.Add($"--environment={EnvironmentName}");
        }

        return [.. args];
    }

    /// <summary>
    /// Builds the host, for a subclass made with a constructor that takes no host factory; the
    /// others build it from theirs. Called inside the daemon, in the startup hook. Whatever builder
    /// it uses (<c>Host.CreateApplicationBuilder</c>, <c>WebApplication.CreateBuilder</c>...), the
    /// daemon configures it as it is built, after the subclass's own code: the logging defaults
    /// below every other configuration source, the daemon's lifetime in place of ConsoleLifetime,
    /// and <see cref="ConfigureBuildingHost"/>. The host must be built during this call.
    /// </summary>
    /// <param name="args">The host's arguments: <see cref="GetHostArguments"/>.</param>
    /// <returns>The host, built and not started.</returns>
    protected virtual IHost CreateHost(string[] args) =>
        throw new NotImplementedException($"{GetType().Name} was made without a host factory and does not override CreateHost");

    /// <summary>
    /// Adds to a host that <see cref="CreateHost"/> is building, just before it is built, after
    /// the subclass's own services and configuration; the default adds nothing.
    /// </summary>
    /// <param name="hostBuilder">The builder, as the Generic Host shows it while building.</param>
    protected virtual void ConfigureBuildingHost(IHostBuilder hostBuilder)
    {
    }

    /// <summary>
    /// Runs when the daemon stops (or hands over), before the host is stopped, for at most
    /// <paramref name="cancellationToken"/>'s time: half of what the stop timeout leaves the host.
    /// The default does nothing.
    /// </summary>
    /// <param name="host">The running host.</param>
    /// <param name="cancellationToken">Cancelled when the time for this step is up.</param>
    /// <returns>A task that completes when the step is done.</returns>
    protected virtual Task OnHostStoppingAsync(IHost host, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Adds <c>--content-root</c> and <c>--environment</c>; a subclass that adds its own calls this first.</summary>
    /// <param name="options">The option set to add to.</param>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Add("--content-root", "DIR", "folder of appsettings.json; default: the program's folder", v => ContentRootPath = OptionValues.FullPath(v), () => ContentRootPath);
        options.Add("--environment", "NAME", "host environment, such as Development; default: DOTNET_ENVIRONMENT, or Production", v => EnvironmentName = OptionValues.NonEmpty(v), () => EnvironmentName);
    }

    /// <summary>
    /// Builds the host and checks its options (those registered with <c>ValidateOnStart</c>): on a
    /// <c>restart</c> this runs while the running generation still works, so a broken
    /// <c>appsettings.json</c> or an invalid option fails the restart and leaves it running. A
    /// daemon that overlaps on restart (<see cref="DaemonBase.OverlapOnRestart"/>, such as a web
    /// server whose listeners are handed over) also starts its host here; the others start it in
    /// <see cref="OnActivateAsync"/>.
    /// </summary>
    /// <param name="cancellationToken">Cancelled when a stop signal arrives during startup.</param>
    /// <returns>A task that completes when the host is built (and, overlapping, started).</returns>
    protected sealed override async Task OnStartupAsync(CancellationToken cancellationToken)
    {
        IHost host;
        try
        {
            host = BuildHost();
        }
        catch (InvalidDataException e) when (e.InnerException is not null)
        {
            // A configuration file that does not parse: which file, and the parser's own words (line and position).
            throw new DaemonException($"startup failed: {e.Message} {e.GetBaseException().Message}", e);
        }

        try
        {
            host.Services.GetService<IStartupValidator>()?.Validate();
        }
        catch (OptionsValidationException e)
        {
            host.Dispose();
            throw new DaemonException($"startup failed: {e.Message}", e);
        }
        catch
        {
            host.Dispose();
            throw;
        }

        if (!OverlapOnRestart && RunsAWebServer(host))
        {
            Log(LogSeverity.Warning, "this host runs an ASP.NET Core server, whose listeners HostedDaemon cannot hand over: a restart refuses connections until the next generation has bound them; run it with WebDaemon (package Daemon.Hosting.Web)");
        }

        _built = host;
        if (OverlapOnRestart)
        {
            // Its servers claim the listeners handed over (Listen) as they start: that is startup's part.
            await StartHostAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Starts the host built by <see cref="OnStartupAsync"/>: every hosted service's <c>StartAsync</c>,
    /// which begins each <see cref="BackgroundService"/>'s <c>ExecuteAsync</c>. The daemon is ready
    /// when every hosted service has started; on a <c>restart</c>, this runs once the previous
    /// generation has exited, so two generations' services never run at once.
    /// </summary>
    /// <param name="cancellationToken">Cancelled when a stop signal arrives during startup.</param>
    /// <returns>A task that completes when the host has started.</returns>
    protected sealed override Task OnActivateAsync(CancellationToken cancellationToken) => StartHostAsync(cancellationToken);

    /// <summary>Starts the host built by <see cref="OnStartupAsync"/>, once; on failure it is stopped and the failure thrown.</summary>
    private async Task StartHostAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _built, null) is not { } host)
        {
            return;
        }

        try
        {
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Returning lets the daemon report the stop signal that cancelled the startup.
            await StopHostAsync(host, afterFailedStart: true).ConfigureAwait(false);
            return;
        }
        catch (Exception)
        {
            // The services that did start get their StopAsync; the exception is what start reports.
            await StopHostAsync(host, afterFailedStart: true).ConfigureAwait(false);
            throw;
        }

        _host = host;
        _logger = host.Services.GetService<ILoggerFactory>()?.CreateLogger(LoggerCategory);
    }

    /// <summary>Runs the default <see cref="DaemonBase.Run"/>, which runs <see cref="RunAsync"/>.</summary>
    /// <param name="stoppingToken">Cancelled when the daemon is asked to stop.</param>
    protected sealed override void Run(CancellationToken stoppingToken) => base.Run(stoppingToken);

    /// <summary>
    /// Waits until the daemon is asked to stop or the application stops itself, then stops the
    /// host within the stop timeout and disposes it.
    /// </summary>
    /// <param name="stoppingToken">Cancelled when the daemon is asked to stop.</param>
    /// <returns>A task that completes when the host has stopped.</returns>
    /// <exception cref="DaemonException">A <see cref="BackgroundService"/> failed.</exception>
    protected sealed override async Task RunAsync(CancellationToken stoppingToken)
    {
        IHost host = _host ?? throw new InvalidOperationException("the host was not started");
        CancellationToken applicationStopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        var stop = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (stoppingToken.Register(() => stop.TrySetResult()))
        using (applicationStopping.Register(() => stop.TrySetResult()))
        {
            await stop.Task.ConfigureAwait(false);
        }

        if (!stoppingToken.IsCancellationRequested)
        {
            Log("stopping (the application stopped the host)");
        }

        List<BackgroundService> backgroundServices = host.Services.GetServices<IHostedService>().OfType<BackgroundService>().ToList();

        // A SIGHUP from now on finds no host to reload rather than a disposed one.
        _host = null;
        TimeSpan spent = await BeforeStopAsync(host).ConfigureAwait(false);
        await StopHostAsync(host, afterFailedStart: false, spent).ConfigureAwait(false);
        foreach (BackgroundService service in backgroundServices)
        {
            if (service.ExecuteTask is { IsFaulted: true } failed)
            {
                Exception cause = failed.Exception!.InnerException ?? failed.Exception;
                throw new DaemonException($"hosted service {service.GetType().Name} failed: {cause.Message}", cause);
            }
        }
    }

    /// <summary>
    /// Reloads the host's configuration. File sources are parsed first, so that a file with a
    /// syntax error leaves the running configuration as it was. A subclass that overrides this
    /// calls it first.
    /// </summary>
    /// <exception cref="DaemonException">A configuration file cannot be read or parsed.</exception>
    protected override void OnReload()
    {
        if (Services?.GetService<IConfiguration>() is not IConfigurationRoot configuration)
        {
            return;
        }

        foreach (IConfigurationProvider provider in configuration.Providers)
        {
            CheckFileSource(provider);
        }

        configuration.Reload();
        Log("configuration reloaded");
    }

    /// <summary>
    /// Forwards the daemon's line to the host's logger once the host runs, at the level of its
    /// severity: information, warning or error.
    /// </summary>
    /// <param name="severity">How much the line matters.</param>
    /// <param name="message">The line, without its timestamp, pid and severity.</param>
    protected sealed override void OnLogged(LogSeverity severity, string message)
    {
        if (_logger is { } logger)
        {
            Action<ILogger, string, Exception?> line = severity switch
            {
                LogSeverity.Warning => _warning,
                LogSeverity.Error => _error,
                _ => _information,
            };
            line(logger, message, null);
        }
    }

    /// <summary>
    /// True when the host has an ASP.NET Core server (IServer, named: this package does not load
    /// ASP.NET Core), asked without creating any service: the running generation may still work.
    /// </summary>
    private static bool RunsAWebServer(IHost host) =>
        Type.GetType("Microsoft.AspNetCore.Hosting.Server.IServer, Microsoft.AspNetCore.Hosting.Server.Abstractions", throwOnError: false) is { } server
        && host.Services.GetService<IServiceProviderIsService>()?.IsService(server) == true;

    private static Action<ILogger, string, Exception?> LifecycleLine(LogLevel level) =>
        LoggerMessage.Define<string>(level, new EventId(1, "DaemonLifecycle"), "{Line}");

    private IHost BuildHost()
    {
        string[] args = GetHostArguments();
        if (_configure is not null)
        {
            // The defaults come first, so every source the builder adds after them wins.
            var defaults = new ConfigurationManager();
            defaults.AddInMemoryCollection(LoggingDefaults());
            HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, Configuration = defaults });
            _configure(builder);
            UseDaemonLifetime(builder.Services);
            return builder.Build();
        }

        if (_createHostBuilder is not null)
        {
            IHostBuilder hostBuilder = _createHostBuilder(args)
                ?? throw new InvalidOperationException("the host builder factory returned null");
            AddDaemonDefaults(hostBuilder);
            try
            {
                return hostBuilder.Build();
            }
            catch (NotSupportedException e) when (hostBuilder.GetType().Name == "ConfigureHostBuilder")
            {
                // WebApplicationBuilder.Host: ASP.NET's own words ("Call WebApplicationBuilder.Build() instead") do not say what works here.
                throw new DaemonException("the host builder is a WebApplicationBuilder's Host, which only WebApplicationBuilder.Build() builds: run the WebApplication with WebDaemon (package Daemon.Hosting.Web)", e);
            }
        }

        return CreateHostConfigured(args);
    }

    /// <summary>The logging defaults for where the console logger writes now: the journal, or the daemon's log.</summary>
    private static KeyValuePair<string, string?>[] LoggingDefaults() => StandardOutputIsJournal ? _journalLoggingDefaults : _loggingDefaults;

    private static void AddDaemonDefaults(IHostBuilder hostBuilder)
    {
        KeyValuePair<string, string?>[] defaults = LoggingDefaults();
        hostBuilder.ConfigureAppConfiguration((_, configuration) => configuration.Sources.Insert(0, new MemoryConfigurationSource { InitialData = defaults }));
        hostBuilder.ConfigureServices(UseDaemonLifetime);
    }

    /// <summary>
    /// <see cref="CreateHost"/>, with the daemon's defaults added as the host is built: through the
    /// Generic Host's "HostBuilding" diagnostic event (as WebApplicationFactory reaches a Program's
    /// host), since a WebApplicationBuilder's services are closed once it has built the host.
    /// </summary>
    private IHost CreateHostConfigured(string[] args)
    {
        var building = new HostBuildingObserver(hostBuilder =>
        {
            AddDaemonDefaults(hostBuilder);
            ConfigureBuildingHost(hostBuilder);
            hostBuilder.ConfigureServices(services => services.AddSingleton<DaemonBuiltHost>());
        });
        IHost host;
        using (building)
        using (DiagnosticListener.AllListeners.Subscribe(building))
        {
            host = CreateHost(args) ?? throw new InvalidOperationException($"{GetType().Name}.CreateHost returned null");
        }

        if (host.Services.GetService<DaemonBuiltHost>() is null)
        {
            (host as IDisposable)?.Dispose();
            throw new DaemonException($"{GetType().Name}: the host was not built inside CreateHost (or its host factory), so the daemon could not configure it; build it there");
        }

        return host;
    }

    /// <summary>Runs <see cref="OnHostStoppingAsync"/> within half of the host's stop budget; returns the time it took.</summary>
    private async Task<TimeSpan> BeforeStopAsync(IHost host)
    {
        TimeSpan half = StopBudget() / 2;
        var watch = Stopwatch.StartNew();
        using var timeout = new CancellationTokenSource(half);
        try
        {
            await OnHostStoppingAsync(host, timeout.Token).WaitAsync(half + TimeSpan.FromMilliseconds(100)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or TimeoutException && timeout.IsCancellationRequested)
        {
            // Out of time: the host's stop does the rest.
        }
        catch (Exception e)
        {
            // Whatever it was (a cancellation of its own included), the host must still be stopped.
            Log(LogSeverity.Warning, $"before stopping the host: {e.Message}");
        }

        return watch.Elapsed < half ? watch.Elapsed : half;
    }

    /// <summary>What the stop timeout leaves the host: the timeout less a reserve for the process to exit.</summary>
    private TimeSpan StopBudget() => Options.StopTimeout - StopReserve();

    /// <summary>A fifth of the stop timeout, 2 s at most: kept for the process to exit after the host stopped.</summary>
    private TimeSpan StopReserve() => TimeSpan.FromTicks(Math.Min(Options.StopTimeout.Ticks / 5, TimeSpan.TicksPerSecond * 2));

    /// <summary>Registered last, so it wins over ConsoleLifetime and anything the application added.</summary>
    private static void UseDaemonLifetime(IServiceCollection services)
    {
        services.RemoveAll<IHostLifetime>();
        services.AddSingleton<IHostLifetime, DaemonHostLifetime>();
    }

    /// <summary>
    /// Stops the host, giving its services the stop timeout less a reserve for the process to
    /// exit, then disposes it (which flushes its loggers).
    /// </summary>
    /// <param name="host">The host, started or not.</param>
    /// <param name="afterFailedStart">True when start failed: that failure is the one to report.</param>
    /// <param name="spent">The part of the budget spent already, by <see cref="OnHostStoppingAsync"/>.</param>
    private async Task StopHostAsync(IHost host, bool afterFailedStart, TimeSpan spent = default)
    {
        TimeSpan reserve = StopReserve();
        TimeSpan budget = StopBudget() - spent;
        string seconds = budget.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        using var timeout = new CancellationTokenSource(budget);
        Exception? failure = null;
        try
        {
            // A service that ignores its token must not keep the daemon past the stop timeout.
            await host.StopAsync(timeout.Token).WaitAsync(budget + (reserve / 2)).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Disposing would wait for that service too: leave it to the process's exit.
            Log(LogSeverity.Warning, $"the host did not stop within {seconds} s; exiting without waiting for it");
            _logger = null;
            return;
        }
        catch (Exception e)
        {
            failure = e;
        }

        if (timeout.IsCancellationRequested)
        {
            Log(LogSeverity.Warning, $"the host took longer than {seconds} s to stop: its services were cancelled");
        }

        _logger = null;
        if (host is IAsyncDisposable asyncDisposable)
        {
            await asyncDisposable.DisposeAsync().ConfigureAwait(false);
        }
        else
        {
            host.Dispose();
        }

        if (failure is not null)
        {
            if (afterFailedStart || timeout.IsCancellationRequested)
            {
                Log(LogSeverity.Warning, $"the host did not stop cleanly: {failure.Message}");
            }
            else
            {
                throw new DaemonException($"the host did not stop cleanly: {failure.Message}", failure);
            }
        }
    }

    /// <summary>Parses a file source into a throwaway provider, so that a bad file fails the reload, not the configuration.</summary>
    private static void CheckFileSource(IConfigurationProvider provider)
    {
        if (provider is not FileConfigurationProvider { Source: { } source })
        {
            return;
        }

        IConfigurationProvider probe = source.Build(new ConfigurationBuilder());
        try
        {
            probe.Load();
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or FormatException)
        {
            // The file and the parser's own words (line and position): the wrappers around them say nothing more.
            string file = source.FileProvider?.GetFileInfo(source.Path ?? "").PhysicalPath ?? source.Path ?? "a configuration file";
            throw new DaemonException($"cannot load {file}, so the running configuration stays: {e.GetBaseException().Message}", e);
        }
        finally
        {
            (probe as IDisposable)?.Dispose();
        }
    }
}
