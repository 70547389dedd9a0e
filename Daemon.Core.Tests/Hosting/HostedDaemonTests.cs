using Daemon.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Daemon.Core.Tests.Hosting;

/// <summary>
/// <see cref="HostedDaemon"/>'s hooks driven in-process, as the daemon runtime would call them,
/// with real hosts: what the host is given, which lifetime it gets, how it stops and reloads.
/// </summary>
[TestFixture]
[NonParallelizable]
public sealed class HostedDaemonTests
{
    private static readonly TimeSpan _patience = TimeSpan.FromSeconds(10);
    private string _folder = null!;
    private Probe? _daemon;

    [SetUp]
    public void SetUp()
    {
        _folder = TestEnvironment.CreateTestFolder("hosting");
    }

    [TearDown]
    public void TearDown()
    {
        _daemon?.StopQuietly();
        Directory.Delete(_folder, recursive: true);
    }

    [Test]
    public void GetHostArguments_NameTheContentRoot_AndTurnOffFileWatching()
    {
        var daemon = new Probe(_ => { });
        Assert.That(daemon.GetHostArguments(), Is.EqualTo(new[] { $"--contentRoot={AppContext.BaseDirectory}", "--hostBuilder:reloadConfigOnChange=false" }));

        daemon.ContentRootPath = _folder;
        daemon.EnvironmentName = "Staging";
        Assert.That(daemon.GetHostArguments(), Is.EqualTo(new[] { $"--contentRoot={_folder}", "--hostBuilder:reloadConfigOnChange=false", "--environment=Staging" }));
    }

    [Test]
    public async Task Startup_ReplacesConsoleLifetime_WithOneThatDoesNothing()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<Idle>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        var lifetimes = _daemon.HostServices.GetServices<IHostLifetime>().ToList();
        Assert.That(lifetimes, Has.Count.EqualTo(1));
        Assert.That(lifetimes[0].GetType().Name, Is.EqualTo("DaemonHostLifetime"));
    }

    [Test]
    public async Task HostBuilderFactory_GetsTheHostArguments_AndItsLifetimeIsReplacedToo()
    {
        string[]? given = null;
        _daemon = new Probe(args =>
        {
            given = args;
            return Host.CreateDefaultBuilder(args).UseConsoleLifetime().ConfigureServices(s => s.AddHostedService<Idle>());
        })
        {
            ContentRootPath = _folder,
            EnvironmentName = "Staging",
        };
        await _daemon.StartHostAsync();

        Assert.That(given, Is.EqualTo(_daemon.GetHostArguments()));
        IHostEnvironment environment = _daemon.HostServices.GetRequiredService<IHostEnvironment>();
        Assert.That(environment.ContentRootPath.TrimEnd('/'), Is.EqualTo(_folder));
        Assert.That(environment.EnvironmentName, Is.EqualTo("Staging"));
        Assert.That(_daemon.HostServices.GetRequiredService<IHostLifetime>().GetType().Name, Is.EqualTo("DaemonHostLifetime"));
    }

    [Test]
    public void Startup_Throws_WhenAHostedServiceThrows()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<Idle>().AddHostedService<FailsToStart>()) { ContentRootPath = _folder };

        Assert.That(() => _daemon.StartHostAsync(), Throws.InvalidOperationException.With.Message.EqualTo("cannot start: no database"));
    }

    [Test]
    public async Task StartupHook_BuildsAndChecksTheHost_ButStartsNoService_WhichActivationDoes()
    {
        // A restart's next generation runs the startup hook while the running one still works.
        var started = new List<string>();
        _daemon = new Probe(builder => builder.Services.AddSingleton(started).AddHostedService<RecordsItsStart>()) { ContentRootPath = _folder };

        await _daemon.PrepareHostAsync();
        Assert.That(started, Is.Empty, "no hosted service runs before activation");
        Assert.That(_daemon.HasHost, Is.False);

        await _daemon.StartHostAsync();
        Assert.That(started, Is.EqualTo(new[] { "started" }), "activation starts what the startup hook built, once");
    }

    [Test]
    public void StartupHook_FailsWithTheOptionsMessage_WhenValidateOnStartRefusesThem()
    {
        var started = new List<string>();
        _daemon = new Probe(builder =>
        {
            builder.Services.AddSingleton(started).AddHostedService<RecordsItsStart>();
            builder.Services.AddOptions<Marker>().Validate(_ => false, "Marker:Name must be set").ValidateOnStart();
        })
        { ContentRootPath = _folder };

        Assert.That(() => _daemon.PrepareHostAsync(), Throws.TypeOf<DaemonException>().With.Message.EqualTo("startup failed: Marker:Name must be set"));
        Assert.That(started, Is.Empty);
    }

    [Test]
    public async Task Startup_ReturnsWithoutAHost_WhenAStopSignalCancelsIt()
    {
        // The daemon runtime then reports "stopped by SIGTERM during startup".
        _daemon = new Probe(builder => builder.Services.AddHostedService<SlowToStart>()) { ContentRootPath = _folder };
        using var stopping = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));

        await _daemon.StartHostAsync(stopping.Token);

        Assert.That(_daemon.HasHost, Is.False);
    }

    [Test]
    public async Task Run_StopsTheHost_WhenTheTokenIsCancelled()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<Idle>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();
        Idle idle = _daemon.HostServices.GetServices<IHostedService>().OfType<Idle>().Single();
        using var stopping = new CancellationTokenSource();

        Task run = _daemon.RunHostAsync(stopping.Token);
        Assert.That(run.IsCompleted, Is.False, "runs until asked to stop");
        stopping.Cancel();

        Assert.That(await Task.WhenAny(run, Task.Delay(_patience)), Is.SameAs(run));
        await run;
        Assert.That(idle.Stopped, Is.True);
    }

    [Test]
    public async Task Run_EndsWithinTheStopTimeout_WhenAServiceIsSlowToStop()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<SlowToStop>()) { ContentRootPath = _folder };
        _daemon.Options.StopTimeout = TimeSpan.FromSeconds(2);
        await _daemon.StartHostAsync();
        SlowToStop slow = _daemon.HostServices.GetServices<IHostedService>().OfType<SlowToStop>().Single();
        using var stopping = new CancellationTokenSource();
        Task run = _daemon.RunHostAsync(stopping.Token);

        long asked = Stopwatch.GetTimestamp();
        stopping.Cancel();

        // The service never stops on its own: the run can only end because the host cut it short.
        // How late past the budget it ends depends on the machine's speed, so that is no assertion
        // here; HostedExampleTests checks "stop" within its --stop-timeout end to end.
        Assert.That(await Task.WhenAny(run, Task.Delay(_patience)), Is.SameAs(run), "the run ends without waiting for the service");
        await run;
        long cutShort = await slow.CutShort.Task.WaitAsync(_patience);   // the host cancelled the service's stop
        Assert.That(Stopwatch.GetElapsedTime(asked, cutShort), Is.GreaterThanOrEqualTo(TimeSpan.FromMilliseconds(1500)), "the host's budget is 1.6 s of the 2 s");
    }

    [Test]
    public async Task Run_Returns_WhenTheApplicationStopsItself()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<StopsTheApplication>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        Task run = _daemon.RunHostAsync(CancellationToken.None);

        Assert.That(await Task.WhenAny(run, Task.Delay(_patience)), Is.SameAs(run));
        await run;
    }

    [Test]
    public async Task Run_Throws_WhenABackgroundServiceFailed()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<FailsLater>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        Task run = _daemon.RunHostAsync(CancellationToken.None);

        Assert.That(await Task.WhenAny(run, Task.Delay(_patience)), Is.SameAs(run), "the host stops itself (BackgroundServiceExceptionBehavior.StopHost)");
        Assert.That(() => run, Throws.InstanceOf<DaemonException>().With.Message.EqualTo("hosted service FailsLater failed: lost the connection"));
    }

    [Test]
    public async Task Reload_ReloadsConfiguration_AndKeepsIt_WhenAFileDoesNotParse()
    {
        string settings = Path.Combine(_folder, "appsettings.json");
        File.WriteAllText(settings, """{ "Greeting": "hello" }""");
        _daemon = new Probe(builder => builder.Services.AddHostedService<Idle>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();
        IConfiguration configuration = _daemon.HostServices.GetRequiredService<IConfiguration>();
        Assert.That(configuration["Greeting"], Is.EqualTo("hello"));

        File.WriteAllText(settings, """{ "Greeting": "bonjour" }""");
        Assert.That(configuration["Greeting"], Is.EqualTo("hello"), "not watched");
        _daemon.ReloadConfiguration();
        Assert.That(configuration["Greeting"], Is.EqualTo("bonjour"));

        File.WriteAllText(settings, """{ "Greeting": """);
        Assert.That(() => _daemon.ReloadConfiguration(), Throws.InstanceOf<DaemonException>().With.Message.StartsWith($"cannot load {settings}, so the running configuration stays: "));
        Assert.That(configuration["Greeting"], Is.EqualTo("bonjour"), "the running configuration stays");
    }

    [Test]
    public async Task LoggedLines_ReachILogger_AtTheLevelOfTheirSeverity()
    {
        var captured = new CapturingLoggerProvider();
        _daemon = new Probe(builder =>
        {
            builder.Logging.AddProvider(captured);
            builder.Services.AddHostedService<Idle>();
        })
        { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        _daemon.Logged(LogSeverity.Information, "ready");
        _daemon.Logged(LogSeverity.Warning, "reload failed: bad file");
        _daemon.Logged(LogSeverity.Error, "stopped (exit 1)");

        Assert.That(captured.Entries.Where(e => e.Category == HostedDaemon.LoggerCategory).Select(e => (e.Level, e.Message)), Is.EqualTo(new[]
        {
            (LogLevel.Information, "ready"),
            (LogLevel.Warning, "reload failed: bad file"),
            (LogLevel.Error, "stopped (exit 1)"),
        }));
    }

    [Test]
    public async Task ConsoleLogger_WritesOneTimestampedLinePerEntry_WithoutColours_ByDefault()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<Idle>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        AssertConsoleDefaults(_daemon.HostServices);
    }

    [Test]
    public async Task ConsoleLogger_Defaults_ApplyToAnIHostBuilder_Too()
    {
        _daemon = new Probe(args => Host.CreateDefaultBuilder(args).ConfigureServices(s => s.AddHostedService<Idle>())) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        AssertConsoleDefaults(_daemon.HostServices);
    }

    [Test]
    public async Task ConsoleLogger_Defaults_GiveWayToAppsettings_AndToCode()
    {
        File.WriteAllText(Path.Combine(_folder, "appsettings.json"), """
            { "Logging": { "Console": { "FormatterOptions": { "SingleLine": false } } } }
            """);
        _daemon = new Probe(builder =>
        {
            builder.Logging.AddSimpleConsole(console => console.TimestampFormat = "HH:mm:ss ");
            builder.Services.AddHostedService<Idle>();
        })
        { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        SimpleConsoleFormatterOptions console = _daemon.HostServices.GetRequiredService<IOptionsMonitor<SimpleConsoleFormatterOptions>>().CurrentValue;
        Assert.That(console.SingleLine, Is.False, "appsettings.json wins");
        Assert.That(console.TimestampFormat, Is.EqualTo("HH:mm:ss "), "code wins");
        Assert.That(console.ColorBehavior, Is.EqualTo(LoggerColorBehavior.Disabled), "what nobody set stays the daemon's default");
    }

    [Test]
    public async Task ConsoleLogger_LeavesOutTheDaemonsOwnLines_WhichTheLogHasAlready()
    {
        _daemon = new Probe(builder => builder.Services.AddHostedService<Idle>()) { ContentRootPath = _folder };
        await _daemon.StartHostAsync();

        LoggerFilterOptions filters = _daemon.HostServices.GetRequiredService<IOptions<LoggerFilterOptions>>().Value;
        Assert.That(
            filters.Rules.Any(r => r.ProviderName == "Console" && r.CategoryName == HostedDaemon.LoggerCategory && r.LogLevel == LogLevel.None),
            Is.True,
            "the console logger writes into the daemon's log, where each of these lines is already");
    }

    [Test]
    public async Task CreateHost_IsConfiguredAsItIsBuilt_AfterTheProgramsOwnServices()
    {
        var daemon = new BuildsItsOwnHost(args =>
        {
            HostApplicationBuilder builder = Host.CreateApplicationBuilder(args);
            builder.Services.AddSingleton<IHostLifetime, ConsoleLifetime>();
            builder.Services.AddSingleton(new Marker("the program's"));
            return builder.Build();
        })
        { ContentRootPath = _folder };

        await daemon.StartHostAsync();
        try
        {
            Assert.That(daemon.Given, Is.EqualTo(daemon.GetHostArguments()));
            Assert.That(daemon.HostServices.GetRequiredService<IHostLifetime>().GetType().Name, Is.EqualTo("DaemonHostLifetime"), "not the program's ConsoleLifetime");
            Assert.That(daemon.HostServices.GetRequiredService<Marker>().Name, Is.EqualTo("the daemon's"), "ConfigureBuildingHost comes after the program's services");
            AssertConsoleDefaults(daemon.HostServices);
        }
        finally
        {
            using var stop = new CancellationTokenSource();
            stop.Cancel();
            await daemon.RunHostAsync(stop.Token);
        }
    }

    [Test]
    public void HostBuilderFactory_GivingAWebApplicationBuildersHost_FailsSayingToUseWebDaemon()
    {
        // WebApplication.CreateBuilder(args).Host is a ConfigureHostBuilder, whose Build() only throws.
        var daemon = new Probe(_ => new ConfigureHostBuilder()) { ContentRootPath = _folder };

        Assert.That(() => daemon.StartHostAsync(), Throws.InstanceOf<DaemonException>().With.Message.EqualTo(
            "the host builder is a WebApplicationBuilder's Host, which only WebApplicationBuilder.Build() builds: run the WebApplication with WebDaemon (package Daemon.Hosting.Web)"));
    }

    [Test]
    public void CreateHost_Fails_WhenItReturnsAHostBuiltBeforeIt()
    {
        IHost prebuilt = Host.CreateApplicationBuilder().Build();
        var daemon = new BuildsItsOwnHost(_ => prebuilt) { ContentRootPath = _folder };

        Assert.That(() => daemon.StartHostAsync(), Throws.InstanceOf<DaemonException>().With.Message.EqualTo(
            "BuildsItsOwnHost: the host was not built inside CreateHost (or its host factory), so the daemon could not configure it; build it there"));
    }

    [Test]
    public async Task Run_CallsOnHostStoppingAsync_BeforeTheHostStops()
    {
        var daemon = new BuildsItsOwnHost(args => Host.CreateApplicationBuilder(args).Build()) { ContentRootPath = _folder };
        await daemon.StartHostAsync();
        using var stop = new CancellationTokenSource();
        stop.Cancel();

        await daemon.RunHostAsync(stop.Token);

        Assert.That(daemon.StoppingSeen, Is.EqualTo(false), "the application was not stopping yet when the step ran");
    }

    /// <summary>The console logger of a host whose program configured no logging: one line per entry, timestamped, no colours.</summary>
    private static void AssertConsoleDefaults(IServiceProvider services)
    {
        Assert.That(services.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>().CurrentValue.FormatterName, Is.EqualTo("simple"), "without a name, the formatter's options would be ignored");
        SimpleConsoleFormatterOptions console = services.GetRequiredService<IOptionsMonitor<SimpleConsoleFormatterOptions>>().CurrentValue;
        Assert.That(console.SingleLine, Is.True);
        Assert.That(console.TimestampFormat, Is.EqualTo("yyyy-MM-dd'T'HH:mm:ss.fffzzz "), "as the daemon's own lines");
        Assert.That(console.ColorBehavior, Is.EqualTo(LoggerColorBehavior.Disabled), "the output is a file");
    }

    /// <summary>Calls the hooks the daemon runtime would call; the hosts log nothing.</summary>
    private sealed class Probe : HostedDaemon
    {
        private Task? _run;

        public Probe(Action<HostApplicationBuilder> configure)
            : base("probe", builder =>
            {
                builder.Logging.ClearProviders();
                configure(builder);
            })
        {
        }

        public Probe(Func<string[], IHostBuilder> createHostBuilder)
            : base("probe", args => createHostBuilder(args).ConfigureLogging(logging => logging.ClearProviders()))
        {
        }

        public IServiceProvider HostServices => Services ?? throw new InvalidOperationException("not started");

        /// <summary>The startup hook, then the activation hook, as the runtime calls them.</summary>
        public async Task StartHostAsync(CancellationToken cancellationToken = default)
        {
            await OnStartupAsync(cancellationToken);
            await OnActivateAsync(cancellationToken);
        }

        /// <summary>The startup hook alone: a restart's next generation, while the running one still works.</summary>
        public Task PrepareHostAsync() => OnStartupAsync(CancellationToken.None);

        public bool HasHost => Services is not null;

        public Task RunHostAsync(CancellationToken stoppingToken) => _run = RunAsync(stoppingToken);

        public void ReloadConfiguration() => OnReload();

        public void Logged(LogSeverity severity, string message) => OnLogged(severity, message);

        /// <summary>Stops a host the test left running, so no host outlives its test.</summary>
        public void StopQuietly()
        {
            if (Services is null || _run is { IsCompleted: true })
            {
                return;
            }

            using var stopNow = new CancellationTokenSource();
            stopNow.Cancel();
            try
            {
                (_run ?? RunAsync(stopNow.Token)).Wait(_patience);
            }
            catch (AggregateException)
            {
            }
        }
    }

    /// <summary>Stands for ASP.NET Core's WebApplicationBuilder.Host (the test project does not load ASP.NET Core): its Build() throws.</summary>
    private sealed class ConfigureHostBuilder : IHostBuilder
    {
        public IDictionary<object, object> Properties { get; } = new Dictionary<object, object>();

        public IHost Build() => throw new NotSupportedException("Call WebApplicationBuilder.Build() instead.");

        public IHostBuilder ConfigureAppConfiguration(Action<HostBuilderContext, IConfigurationBuilder> configureDelegate) => this;

        public IHostBuilder ConfigureContainer<TContainerBuilder>(Action<HostBuilderContext, TContainerBuilder> configureDelegate) => this;

        public IHostBuilder ConfigureHostConfiguration(Action<IConfigurationBuilder> configureDelegate) => this;

        public IHostBuilder ConfigureServices(Action<HostBuilderContext, IServiceCollection> configureDelegate) => this;

        public IHostBuilder UseServiceProviderFactory<TContainerBuilder>(IServiceProviderFactory<TContainerBuilder> factory)
            where TContainerBuilder : notnull => this;

        public IHostBuilder UseServiceProviderFactory<TContainerBuilder>(Func<HostBuilderContext, IServiceProviderFactory<TContainerBuilder>> factory)
            where TContainerBuilder : notnull => this;
    }

    private sealed record Marker(string Name)
    {
        public Marker()
            : this("")
        {
        }
    }

    /// <summary>Notes that its StartAsync ran.</summary>
    private sealed class RecordsItsStart(List<string> started) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            started.Add("started");
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>A subclass that builds its host itself, in <see cref="HostedDaemon.CreateHost"/>.</summary>
    private sealed class BuildsItsOwnHost(Func<string[], IHost> build) : HostedDaemon("probe")
    {
        public string[]? Given { get; private set; }

        /// <summary>Whether the host's application was stopping when <see cref="OnHostStoppingAsync"/> ran; null before.</summary>
        public bool? StoppingSeen { get; private set; }

        public IServiceProvider HostServices => Services ?? throw new InvalidOperationException("not started");

        public async Task StartHostAsync()
        {
            await OnStartupAsync(CancellationToken.None);
            await OnActivateAsync(CancellationToken.None);
        }

        public Task RunHostAsync(CancellationToken stoppingToken) => RunAsync(stoppingToken);

        protected override IHost CreateHost(string[] args)
        {
            Given = args;
            return build(args);
        }

        protected override void ConfigureBuildingHost(IHostBuilder hostBuilder) =>
            hostBuilder.ConfigureServices(services => services.AddSingleton(new Marker("the daemon's")).AddLogging(logging => logging.ClearProviders()));

        protected override Task OnHostStoppingAsync(IHost host, CancellationToken cancellationToken)
        {
            StoppingSeen = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested;
            return Task.CompletedTask;
        }
    }

    /// <summary>Keeps every entry logged at Information or above: category, level and message.</summary>
    private sealed class CapturingLoggerProvider : ILoggerProvider
    {
        public List<(string Category, LogLevel Level, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                lock (provider.Entries)
                {
                    provider.Entries.Add((category, logLevel, formatter(state, exception)));
                }
            }
        }
    }

    private sealed class Idle : BackgroundService
    {
        public bool Stopped { get; private set; }

        public override async Task StopAsync(CancellationToken cancellationToken)
        {
            await base.StopAsync(cancellationToken);
            Stopped = true;
        }

        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Delay(Timeout.Infinite, stoppingToken);
    }

    /// <summary>Stops only when the host gives up on it; <see cref="CutShort"/>: when (a Stopwatch timestamp).</summary>
    private sealed class SlowToStop : BackgroundService
    {
        public TaskCompletionSource<long> CutShort { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task StopAsync(CancellationToken cancellationToken)
        {
            await base.StopAsync(cancellationToken);
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            CutShort.TrySetResult(Stopwatch.GetTimestamp());
        }

        protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.Delay(Timeout.Infinite, stoppingToken);
    }

    private sealed class SlowToStart : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => Task.Delay(Timeout.Infinite, cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class FailsToStart : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => throw new InvalidOperationException("cannot start: no database");

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    private sealed class StopsTheApplication(IHostApplicationLifetime lifetime) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Delay(50, stoppingToken);
            lifetime.StopApplication();
        }
    }

    private sealed class FailsLater : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            await Task.Delay(50, stoppingToken);
            throw new InvalidOperationException("lost the connection");
        }
    }
}
