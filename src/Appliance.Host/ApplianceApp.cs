using Appliance.Api.Admin;
using Appliance.Api.Batches;
using Appliance.Api.Guardrails;
using Appliance.Api.OpenAi;
using Appliance.Host.Extensions;
using Appliance.Host.Identity;
using Appliance.Host.Tls;

namespace Appliance.Host;

/// <summary>The appliance's composition, read top to bottom: what runs and what is served.</summary>
public static class ApplianceApp
{
    public static WebApplication Create(string[] args)
    {
        // The application name is fixed: it names the static web assets manifest, also when tests host the appliance.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ApplicationName = typeof(ApplianceApp).Assembly.GetName().Name });
        builder.AddSettingsFiles();
        builder.AddApplianceDefaults();
        builder.AddClusterTls();
        builder.AddTrustedProxies();
        builder.AddBrowserOrigins();
        builder.AddModelCatalog();
        builder.AddApplianceIdentity();
        builder.AddApplianceAudit();
        builder.AddAppliancePool();
        builder.AddApplianceQuotas();
        builder.AddApplianceMetrics();
        builder.AddApplianceConsole();
        builder.AddApplianceDataProtection();
        builder.AddApplianceBatches();
        builder.AddApplianceGuardrails();
        builder.Services.AddApplianceHealthChecks();
        // What escapes an endpoint outside /v1 (whose filter answers in OpenAI's format); the handler clears the headers,
        // so the audit record's request id is set again for support to find the record.
        builder.Services.AddProblemDetails(options => options.CustomizeProblemDetails = context =>
        {
            context.HttpContext.Response.Headers[Audit.AuditMiddleware.RequestIdHeader] = context.HttpContext.TraceIdentifier;
            context.ProblemDetails.Extensions["requestId"] = context.HttpContext.TraceIdentifier;
        });

        var app = builder.Build();
        app.UseClientCertificateRecheck();
        app.UseTrustedProxies();
        app.UseBrowserOrigins();
        app.UseAnthropicKeyHeader();
        app.UseApplianceMetrics();
        app.UseApplianceAudit();
        app.UseExceptionHandler(); // inside the audit: a failure is answered as RFC 7807 and recorded with its 500
        app.UseApplianceDataProtection();
        app.UseApplianceIdentity();
        app.MapApplianceHealth();
        app.MapOpenAiApi().RequireAuthorization(AppliancePolicies.Chat);
        app.MapTokenizerAtRoot().RequireAuthorization(AppliancePolicies.Chat);
        app.MapGroup("/admin").MapApiKeysApi().MapNodeAdminApi().MapModelAdminApi().MapTlsAdminApi().MapBatchAdminApi().MapGuardrailAdminApi().RequireAuthorization(AppliancePolicies.Admin);
        app.MapApplianceAudit(AppliancePolicies.Audit);
        app.MapApplianceMetrics(AppliancePolicies.Admin);
        app.MapApplianceConsole(AppliancePolicies.Audit, AppliancePolicies.Usage);
        app.WarnOfUnguardedModels();
        app.UseStartupBanner();
        return app;
    }
}
