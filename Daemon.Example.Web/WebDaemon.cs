using System;
using System.Globalization;
using System.Net;
using System.Runtime.CompilerServices;
using Daemon.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Daemon.Example.Web;

/// <summary>
/// An ASP.NET Core minimal API (<c>GET /</c> answers 200) on Kestrel, run as a daemon by
/// <see cref="HostedDaemon"/>. Kestrel listens on a socket from <c>ListenDescriptor</c>, so on
/// <c>restart</c> the next generation serves on the very socket this one listened on, and no
/// request is refused.
/// </summary>
public sealed class WebDaemon : HostedDaemon
{
    private WebDaemon(Func<string[], IHostBuilder> createHostBuilder)
        : base("Daemon.Example.Web", createHostBuilder)
    {
    }

    /// <summary>The TCP port on 127.0.0.1 (<c>--port</c>). Default: 8080.</summary>
    public int Port { get; set; } = 8080;

    /// <summary>Creates the daemon; its host is built in the startup hook, when its listener can be had.</summary>
    public static WebDaemon Create()
    {
        var self = new StrongBox<WebDaemon>();
        self.Value = new WebDaemon(args => self.Value!.CreateHostBuilder(args));
        return self.Value;
    }

    /// <inheritdoc/>
    protected override void ConfigureOptions(DaemonOptionSet options)
    {
        base.ConfigureOptions(options);
        options.Add("--port", "N", "TCP port to serve HTTP on, on 127.0.0.1", v => Port = OptionValues.Port(v), () => Port.ToString(CultureInfo.InvariantCulture));
    }

    private IHostBuilder CreateHostBuilder(string[] args) => Host.CreateDefaultBuilder(args)
        .ConfigureLogging(logging =>
        {
            // HostedDaemon's defaults make the console lines single and timestamped.
            logging.ClearProviders();
            logging.AddConsole();
            // One line per request would drown the daemon's own lines.
            logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        })
        .ConfigureWebHost(web => web
            .UseKestrel(kestrel =>
            {
                // Kestrel owns (and closes) a copy; the daemon keeps the socket to hand it over.
                kestrel.ListenHandle(ListenDescriptor("http", new IPEndPoint(IPAddress.Loopback, Port)));
            })
            .ConfigureServices(services => services.AddRouting())
            .Configure(app =>
            {
                app.UseRouting();
                app.UseEndpoints(endpoints => endpoints.MapGet("/", () => $"hello from pid {Environment.ProcessId}\n"));
            }));
}
