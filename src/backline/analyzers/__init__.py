"""backline.analyzers"""
